//! The socket edge shared by the Kafka, Raft and HTTP listeners: the accept
//! loop with its connection and per-address limits (`accept`, `admission`),
//! length-prefixed frames read cancellation-safely under a byte budget that
//! every connection of a listener shares (`frame`, `budget`), and what was
//! refused, counted for `/metrics` (`stats`). Knows nothing of what the
//! frames mean.

pub mod accept;
pub mod admission;
pub mod budget;
pub mod frame;
pub mod stats;

pub use accept::{Accepted, Acceptor};
pub use admission::{Admission, Admit};
pub use budget::{Budget, Reservation};
pub use frame::{Frame, FrameError, FrameReader};
pub use stats::{EdgeStats, Refusal};
