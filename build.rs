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
    Ok(())
}
