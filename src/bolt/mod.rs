//! bbolt's file format, as etcd writes its backend: a write-once writer and a read-only
//! reader, small enough to check against the format by eye and kept apart so it could
//! become a crate.
//!
//! Why our own: etcd writes its files without a freelist (freelist page id all ones, the
//! free pages being those no bucket reaches), and bbolt-rs, nut and jammdb all read a
//! freelist page when they open a file, so none of them reads etcd's files as they are.
//!
//! The format (bbolt 1.3, which etcd 3.4 and 3.5 use; little-endian):
//! - every page starts with a 16-byte header: id u64, flags u16 (branch 0x01, leaf 0x02,
//!   meta 0x04, freelist 0x10), count u16, overflow u32 (a node larger than a page spans
//!   `overflow` more pages);
//! - pages 0 and 1 are meta pages: magic 0xED0CDAED, version 2, page size, flags, the root
//!   bucket {root page, sequence}, freelist page, high-water page id, transaction id and an
//!   FNV-1a-64 checksum of the fields before it. The valid one with the higher txid wins;
//! - a leaf holds `count` 16-byte elements (flags (1 = sub-bucket), pos, key size, value
//!   size; `pos` counts from the element itself), then the keys and values; a branch holds
//!   16-byte elements (pos, key size, child page id) and the keys, each the first key of its
//!   child; keys are sorted bytewise;
//! - a bucket is a value {root page u64, sequence u64} in its parent; root 0 means "inline":
//!   a leaf page image follows the header in the value itself.
//!
//! The writer lays out each bucket as full leaves and branches above them and writes no
//! freelist, as etcd does on Linux. The reader follows the root bucket down, accepting
//! inline buckets too, and checks every page it reads against the file.

mod reader;
mod writer;

pub use reader::BoltFile;
pub use reader::Entry;
pub use writer::write;

pub const MAGIC: u32 = 0xED0C_DAED;
pub const VERSION: u32 = 2;
pub const PAGE_SIZE: usize = 4096;
pub const PAGE_HEADER: usize = 16;
pub const ELEMENT: usize = 16;
pub const BUCKET_HEADER: usize = 16;
/// The freelist page id that means "no freelist written".
pub const NO_FREELIST: u64 = u64::MAX;

pub const FLAG_BRANCH: u16 = 0x01;
pub const FLAG_LEAF: u16 = 0x02;
pub const FLAG_META: u16 = 0x04;
pub const FLAG_FREELIST: u16 = 0x10;
/// A leaf element whose value is a sub-bucket.
pub const ELEMENT_BUCKET: u32 = 0x01;

/// FNV-1a, 64 bits: the meta page's checksum.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The top-level buckets of a file and their entries, in bbolt's (bytewise) order.
pub type Buckets = std::collections::BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

#[cfg(test)]
mod tests;
