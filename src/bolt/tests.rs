use super::*;

fn bucket(entries: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

#[test]
fn what_is_written_reads_back_exactly() {
    let mut buckets = Buckets::new();
    buckets.insert(b"empty".to_vec(), vec![]);
    buckets.insert(b"meta".to_vec(), bucket(&[(b"consistent_index", &[0, 0, 0, 0, 0, 0, 0, 9])]));
    // Enough entries for several leaves and a branch above them, and values that overflow.
    let many: Vec<(Vec<u8>, Vec<u8>)> =
        (0u64..5000).map(|i| (i.to_be_bytes().to_vec(), format!("value {i}").into_bytes())).collect();
    buckets.insert(b"key".to_vec(), many);
    buckets.insert(b"big".to_vec(), bucket(&[(b"a", &vec![7u8; 3 * PAGE_SIZE]), (b"b", b"small")]));
    let file = write(&buckets);
    assert_eq!(file.len() % PAGE_SIZE, 0);
    let read = BoltFile::open(&file).expect("our own file opens").buckets().expect("and reads");
    assert_eq!(read, buckets);
}

#[test]
fn the_file_real_etcd_wrote_reads_with_its_inline_buckets_and_no_freelist() {
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etcd-3.4.23.snapshot")).unwrap();
    // etcdctl appends a 32-byte SHA-256 to the bbolt file.
    let db = &data[..data.len() - 32];
    let file = BoltFile::open(db).expect("etcd's file opens");
    let buckets = file.buckets().expect("and reads");
    let names: Vec<String> = buckets.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert_eq!(
        names,
        ["alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta"]
    );
    assert_eq!(buckets[&b"key".to_vec()].len(), 5);
    assert_eq!(buckets[&b"cluster".to_vec()], bucket(&[(b"clusterVersion", b"3.4.0")]));
    let total: usize = buckets.values().map(Vec::len).sum();
    assert_eq!(total, 12, "etcdctl snapshot status counts 12 keys");
}

#[test]
fn damage_is_refused_with_what_is_wrong() {
    let mut buckets = Buckets::new();
    buckets.insert(b"key".to_vec(), bucket(&[(b"k", b"v")]));
    let good = write(&buckets);
    let err = |data: &[u8]| match BoltFile::open(data).and_then(|f| f.buckets()) {
        Ok(_) => String::new(),
        Err(e) => format!("{e:#}"),
    };
    assert!(err(&good[..50]).contains("too short"), "{}", err(&good[..50]));
    assert!(err(&good[..3 * PAGE_SIZE]).contains("truncated"), "{}", err(&good[..3 * PAGE_SIZE]));
    let mut flipped = good.clone();
    flipped[2 * PAGE_SIZE + 8] = FLAG_FREELIST as u8;
    assert!(err(&flipped).contains("page of kind"), "{}", err(&flipped));
    let mut both_metas = good.clone();
    both_metas[PAGE_HEADER + 20] ^= 1;
    both_metas[PAGE_SIZE + PAGE_HEADER + 20] ^= 1;
    assert!(err(&both_metas).contains("checksum"), "{}", err(&both_metas));
    let text = vec![b'x'; 3 * PAGE_SIZE];
    assert!(err(&text).contains("neither meta page is valid"), "{}", err(&text));
}
