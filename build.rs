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
    tonic_prost_build::configure().bytes(".").compile_fds(descriptors)?;
    Ok(())
}
