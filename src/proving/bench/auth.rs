//! Auth on, for the benchmark: the same users, roles and tokens on raftty and on etcd, so
//! the cost of checking every request is measured the same way on both.
//!
//! The load runs as a user who is not root (root skips the permission checks): `bench`,
//! with read and write on the benchmark's prefix, sending etcd's simple token with every
//! request, as clientv3 does.

use anyhow::Context;
use anyhow::Result;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::authpb::Permission;
use crate::proto::authpb::permission::Type;
use crate::proto::etcdserverpb::*;

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const ROOT_PASSWORD: &str = "bench-root-password";

/// Creates root and the `bench` user, turns auth on, and returns bench's token. Admin
/// calls go as the lab's root certificate (CN root), which is root once root exists.
pub async fn enable(endpoint: &str, cert: &CertFiles) -> Result<String> {
    let mut c = EtcdClient::connect(endpoint, cert, std::time::Duration::from_secs(10)).await?;
    let auth = &mut c.auth;
    auth.user_add(AuthUserAddRequest { name: "root".into(), password: ROOT_PASSWORD.into(), options: None }).await?;
    auth.user_grant_role(AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() }).await?;
    auth.role_add(AuthRoleAddRequest { name: USER.into() }).await?;
    let prefix = Permission { perm_type: Type::Readwrite as i32, key: "bench/".into(), range_end: "bench0".into() };
    auth.role_grant_permission(AuthRoleGrantPermissionRequest { name: USER.into(), perm: Some(prefix) }).await?;
    auth.user_add(AuthUserAddRequest { name: USER.into(), password: PASSWORD.into(), options: None }).await?;
    auth.user_grant_role(AuthUserGrantRoleRequest { user: USER.into(), role: USER.into() }).await?;
    auth.auth_enable(AuthEnableRequest {}).await.context("enabling auth")?;
    let token = auth
        .authenticate(AuthenticateRequest { name: USER.into(), password: PASSWORD.into() })
        .await
        .context("authenticating the bench user")?
        .into_inner()
        .token;
    Ok(token)
}

/// Turns auth off again, so what is measured next runs as before.
pub async fn disable(endpoint: &str, cert: &CertFiles) -> Result<()> {
    let mut c = EtcdClient::connect(endpoint, cert, std::time::Duration::from_secs(10)).await?;
    c.auth.auth_disable(AuthDisableRequest {}).await.context("disabling auth")?;
    Ok(())
}
