//! Compiles the protobuf definitions under `proto/` with protox (pure Rust), so building
//! raftty needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/etcd/kv.proto",
        "proto/etcd/auth.proto",
        "proto/etcd/rpc.proto",
        "proto/raftty/raft.proto",
        "proto/raftty/store.proto",
        "proto/raftty/admin.proto",
        "proto/raftty/lease.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let encoded = prost::Message::encode_to_vec(&descriptors);
    tonic_prost_build::configure().bytes(".").compile_fds(descriptors)?;
    // JSON for etcd's types, as etcd's HTTP gateway speaks it: proto field names, int64 as
    // strings, bytes as base64.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".etcdserverpb", ".mvccpb", ".authpb"])?;
    embed_lessons()?;
    Ok(())
}

/// The lessons and demos that ship are data files under `lessons/` and `lessons/demos/`;
/// the binary carries them, so it needs no source tree at run time. Adding a file there adds
/// a lesson or a demo: no code lists them.
fn embed_lessons() -> Result<(), Box<dyn std::error::Error>> {
    embed("lessons", "lessons.rs")?;
    embed("lessons/demos", "demos.rs")
}

fn embed(folder: &str, out_name: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={folder}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).ok_or("a file name that is not UTF-8")?;
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    out.push_str("]\n");
    std::fs::write(std::path::Path::new(&std::env::var("OUT_DIR")?).join(out_name), out)?;
    Ok(())
}
