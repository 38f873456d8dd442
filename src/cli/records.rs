//! `raftka produce` (stdin lines to records) and `raftka consume`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;

use super::client::{CliError, Client};
use super::{print_json, ConsumeArgs, Opts, ProduceArgs};
use crate::http::records::{NewRecord, ProduceBody, ProduceFormat, Produced, ReadRecord, ReadRecords};
use crate::http::topics::TopicView;

/// Records per request.
const PRODUCE_BATCH: usize = 1000;
/// Records asked for per read.
const READ_BATCH: usize = 1000;
/// How long `--follow` waits before asking again when nothing was new.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub(super) async fn produce(client: &Client, opts: &Opts, args: ProduceArgs) -> Result<(), CliError> {
    let path = format!("/v1/topics/{}/records", args.topic);
    let mut pending = Vec::new();
    let (mut sent, mut offsets) = (0usize, Vec::new());
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let line = lines.next().transpose()?;
        if let Some(line) = &line {
            let (key, value) = match args.key_separator.as_deref().and_then(|sep| line.split_once(sep)) {
                Some((k, v)) => (Some(k), v),
                None => (None, line.as_str()),
            };
            pending.push(NewRecord {
                key: key.map(|k| serde_json::Value::String(k.to_string())),
                value: Some(serde_json::Value::String(value.to_string())),
                partition: args.partition,
                headers: BTreeMap::new(),
            });
        }
        if pending.len() >= PRODUCE_BATCH || (line.is_none() && !pending.is_empty()) {
            let body = ProduceBody { format: ProduceFormat::Json, records: std::mem::take(&mut pending) };
            let produced: Produced = client.call(Method::POST, &path, Some(&body)).await?;
            sent += produced.offsets.len();
            if opts.json {
                offsets.extend(produced.offsets);
            }
        }
        if line.is_none() {
            break;
        }
    }
    if opts.json {
        print_json(&Produced { offsets });
    } else {
        eprintln!("produced {sent} records to {}", args.topic);
    }
    Ok(())
}

/// A consumed record as `--json` prints it: the record and its partition.
#[derive(Serialize)]
struct Consumed<'a> {
    partition: i32,
    #[serde(flatten)]
    record: &'a ReadRecord,
}

pub(super) async fn consume(client: &Client, opts: &Opts, args: ConsumeArgs) -> Result<(), CliError> {
    let topic: TopicView = client.get(&format!("/v1/topics/{}", args.topic)).await?;
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let partitions: HashMap<i32, _> = topic.partitions.iter().map(|p| (p.id, p)).collect();
    let wanted: Vec<i32> = match args.partition {
        Some(p) if (0..count).contains(&p) => vec![p],
        Some(p) => {
            return Err(CliError::Usage(format!("partition {p} out of range: '{}' has {count}", args.topic)))
        }
        None => (0..count).collect(),
    };
    let mut cursors = BTreeMap::new();
    for p in wanted {
        let info = partitions.get(&p);
        let start = match args.offset.as_str() {
            "beginning" => info.and_then(|i| i.log_start_offset).unwrap_or(0),
            "end" => info.and_then(|i| i.high_watermark).unwrap_or(0),
            n => n
                .parse()
                .map_err(|_| CliError::Usage(format!("--offset '{n}' is not beginning, end or a number")))?,
        };
        cursors.insert(p, start);
    }
    let mut printed = 0usize;
    let out = std::io::stdout();
    loop {
        let mut idle = true;
        for (&p, cursor) in cursors.iter_mut() {
            let want = args.max.map_or(READ_BATCH, |m| (m - printed).min(READ_BATCH));
            let path = format!("/v1/topics/{}/partitions/{p}/records?offset={cursor}&max={want}", args.topic);
            let page: ReadRecords = client.get(&path).await?;
            let mut lock = out.lock();
            for r in &page.records {
                let line = if opts.json {
                    serde_json::to_string(&Consumed { partition: p, record: r }).unwrap_or_default()
                } else {
                    let value = r.value.as_deref().unwrap_or("");
                    match &args.key_separator {
                        Some(sep) => format!("{}{sep}{value}", r.key.as_deref().unwrap_or("")),
                        None => value.to_string(),
                    }
                };
                let _ = writeln!(lock, "{line}");
            }
            let _ = lock.flush();
            printed += page.records.len();
            idle &= page.records.is_empty();
            *cursor = page.next_offset;
            if args.max.is_some_and(|m| printed >= m) {
                return Ok(());
            }
        }
        if idle {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}
