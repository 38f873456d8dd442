//! Who may hold a connection: at most `max_per_ip` from one address (Kafka's
//! `max.connections.per.ip`). A connection over the limit is refused on
//! accept and costs nothing else; one that is admitted holds an `Admit`,
//! which gives its place back when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
pub struct Admission {
    max_per_ip: usize,
    // A std mutex: held only to count, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A place taken by one open connection.
#[derive(Debug)]
pub struct Admit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub fn new(max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self { max_per_ip, open: Mutex::new(HashMap::new()) })
    }

    /// A place for one more connection from `ip`, if it has one left.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admit> {
        // The map is only counts: a panic elsewhere cannot leave it half
        // written, so a poisoned lock is still good to use.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(Admit { admission: self.clone(), ip })
    }

    /// Connections open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Admit {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_limit_and_places_come_back() {
        let a = Admission::new(2);
        let (x, y): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = a.admit(x).unwrap();
        let _second = a.admit(x).unwrap();
        assert!(a.admit(x).is_none());
        let _other = a.admit(y).unwrap();
        drop(first);
        assert_eq!(a.open_from(x), 1);
        assert!(a.admit(x).is_some());
    }
}
