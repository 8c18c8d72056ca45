//! The change log of a continuous backup: every revision after a full snapshot, as the
//! Watch delivered it, appended as checksummed records.
//!
//! A record is `length u32 LE | CRC-32C u32 LE | payload`, the payload a [`ChangeRecord`]
//! (one revision: its events in order, and when it was recorded). A kill -9 can leave half
//! a record at the end: reading stops at the first record that is short or fails its
//! checksum, and [`open_for_append`] cuts the file back to the last whole one, saying so.

use std::fs::File;
use std::fs::OpenOptions;
use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use anyhow::Result;
use prost::Message;

use crate::proto::mvccpb::Event;

/// One revision's changes.
#[derive(Clone, PartialEq, Message)]
pub struct ChangeRecord {
    #[prost(int64, tag = "1")]
    pub revision: i64,
    #[prost(message, repeated, tag = "2")]
    pub events: Vec<Event>,
    /// When the backup recorded it, in milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub recorded_unix_millis: i64,
}

const HEADER: usize = 8;
/// No revision's record is anywhere near this (etcd caps a request at 1.5 MiB).
const MAX_RECORD: usize = 256 * 1024 * 1024;

pub fn encode(record: &ChangeRecord) -> Vec<u8> {
    let payload = record.encode_to_vec();
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The whole records of `bytes`, and the length they take (the rest is a torn tail).
pub fn decode_all(bytes: &[u8]) -> (Vec<ChangeRecord>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || bytes.len() < at + HEADER + len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(record) = ChangeRecord::decode(payload) else { break };
        records.push(record);
        at += HEADER + len;
    }
    (records, at)
}

/// Reads a log: its records, and how many bytes at its end were torn (not whole records).
pub fn read(path: &Path) -> Result<(Vec<ChangeRecord>, usize)> {
    let mut bytes = Vec::new();
    File::open(path).with_context(|| format!("opening {}", path.display()))?.read_to_end(&mut bytes)?;
    let (records, whole) = decode_all(&bytes);
    Ok((records, bytes.len() - whole))
}

/// Opens a log to append to, first cutting a torn tail back to the last whole record.
/// Returns the file, its records, and how many torn bytes were cut.
pub fn open_for_append(path: &Path) -> Result<(File, Vec<ChangeRecord>, usize)> {
    let (records, torn) = if path.exists() { read(path)? } else { (Vec::new(), 0) };
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    if torn > 0 {
        let keep = file.metadata()?.len() - torn as u64;
        file.set_len(keep)?;
        file.sync_all()?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok((file, records, torn))
}

pub fn append(file: &mut File, record: &ChangeRecord) -> Result<()> {
    file.write_all(&encode(record))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: i64) -> ChangeRecord {
        ChangeRecord { revision, events: vec![Event::default()], recorded_unix_millis: 1 }
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("changes.log");
        let (mut f, _, _) = open_for_append(&path).unwrap();
        for r in 2..=4 {
            append(&mut f, &record(r)).unwrap();
        }
        let whole = encode(&record(5));
        f.write_all(&whole[..whole.len() - 3]).unwrap();
        drop(f);
        let (records, torn) = read(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.revision).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(torn, whole.len() - 3);
        let (mut f, records, cut) = open_for_append(&path).unwrap();
        assert_eq!((records.len(), cut), (3, whole.len() - 3));
        append(&mut f, &record(5)).unwrap();
        drop(f);
        let (records, torn) = read(&path).unwrap();
        assert_eq!((records.len(), torn), (4, 0));
    }

    #[test]
    fn a_flipped_byte_ends_the_log_there() {
        let mut bytes = encode(&record(2));
        bytes.extend(encode(&record(3)));
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let (records, whole) = decode_all(&bytes);
        assert_eq!(records.len(), 1);
        assert_eq!(whole, encode(&record(2)).len());
    }
}
