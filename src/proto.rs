//! The generated protobuf code: etcd's wire types and services, and raftty's own.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod authpb {
    tonic::include_proto!("authpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

pub mod rafttypb {
    tonic::include_proto!("rafttypb");
}

pub mod rafttystore {
    tonic::include_proto!("rafttystore");
}

pub mod rafttyadmin {
    tonic::include_proto!("rafttyadmin");
}
