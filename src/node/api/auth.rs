//! etcd's Auth service: turning auth on and off, simple tokens, users and roles, with etcd
//! 3.4's rules and errors (see `node/auth/`). Changes go through Raft; passwords are hashed
//! here, before they are proposed, so the log never holds one in clear.

use std::sync::Arc;

use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::errors::EtcdError;
use crate::node::auth::gate;
use crate::node::auth::gate::Caller;
use crate::node::member::Member;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::*;
use crate::proto::rafttypb::AssignToken;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

/// etcd's default bcrypt cost.
const BCRYPT_COST: u32 = 10;

pub struct AuthService {
    member: Arc<Member>,
}

impl AuthService {
    pub fn new(member: Arc<Member>) -> AuthService {
        AuthService { member }
    }

    /// An admin change: the caller must hold the root role (while auth is on).
    async fn admin_change<T>(&self, req: &Request<T>, op: Op) -> Result<ResponseHeader, Status> {
        let caller = gate::caller(&self.member, req).await?;
        caller.admin(&self.member)?;
        let (_, revision) = self.member.write_as(&caller, op).await?;
        Ok(self.member.header(revision))
    }

    fn header(&self) -> ResponseHeader {
        self.member.header(self.member.state_machine.mvcc().current_revision())
    }
}

async fn hash(password: String) -> Result<String, Status> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(|e| Status::internal(format!("hashing the password: {e}")))?
        .map_err(|e| Status::internal(format!("hashing the password: {e}")))
}

fn token_prefix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16).map(|_| rng.sample(rand::distr::Alphabetic) as char).collect()
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(&self, req: Request<AuthEnableRequest>) -> Result<Response<AuthEnableResponse>, Status> {
        let header = self.admin_change(&req, Op::AuthEnable(AuthEnableRequest {})).await?;
        Ok(Response::new(AuthEnableResponse { header: Some(header) }))
    }

    async fn auth_disable(&self, req: Request<AuthDisableRequest>) -> Result<Response<AuthDisableResponse>, Status> {
        let header = self.admin_change(&req, Op::AuthDisable(AuthDisableRequest {})).await?;
        Ok(Response::new(AuthDisableResponse { header: Some(header) }))
    }

    async fn authenticate(&self, req: Request<AuthenticateRequest>) -> Result<Response<AuthenticateResponse>, Status> {
        let req = req.into_inner();
        let mvcc = self.member.state_machine.mvcc();
        let stored = mvcc.read_state(|s| {
            if !s.auth.enabled {
                return Err(EtcdError::AuthNotEnabled);
            }
            let user = s.auth.users.get(&req.name).ok_or(EtcdError::AuthFailed)?;
            if user.options.is_some_and(|o| o.no_password) || user.password.is_empty() {
                return Err(EtcdError::AuthFailed);
            }
            Ok(String::from_utf8_lossy(&user.password).into_owned())
        });
        let stored = stored.inspect_err(|e| {
            if *e == EtcdError::AuthFailed {
                gate::refused(Some(&req.name), "a user with a password", e);
            }
        })?;
        let password = req.password.clone();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &stored).unwrap_or(false))
            .await
            .unwrap_or(false);
        if !matches {
            gate::refused(Some(&req.name), "a matching password", &EtcdError::AuthFailed);
            return Err(EtcdError::AuthFailed.into());
        }
        let (outcome, revision) =
            self.member.write(Op::AssignToken(AssignToken { user: req.name.clone(), prefix: token_prefix() })).await?;
        match outcome {
            Outcome::Authenticated(mut resp) => {
                resp.header = Some(self.member.header(revision));
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!("unexpected state machine result {other:?}"))),
        }
    }

    async fn user_add(&self, req: Request<AuthUserAddRequest>) -> Result<Response<AuthUserAddResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        caller.admin(&self.member)?;
        let mut add = req.into_inner();
        if add.name.is_empty() {
            return Err(EtcdError::UserEmpty.into());
        }
        let no_password = add.options.is_some_and(|o| o.no_password);
        add.password = if no_password { String::new() } else { hash(add.password).await? };
        let (_, revision) = self.member.write_as(&caller, Op::UserAdd(add)).await?;
        Ok(Response::new(AuthUserAddResponse { header: Some(self.member.header(revision)) }))
    }

    async fn user_get(&self, req: Request<AuthUserGetRequest>) -> Result<Response<AuthUserGetResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        let name = req.into_inner().name;
        // Anyone may look at themselves; looking at others is for root.
        if caller.user() != Some(name.as_str()) {
            caller.admin(&self.member)?;
        }
        self.member.linearizable_barrier().await?;
        let roles = self
            .member
            .state_machine
            .mvcc()
            .read_state(|s| s.auth.users.get(&name).map(|u| u.roles.clone()))
            .ok_or(EtcdError::UserNotFound)?;
        Ok(Response::new(AuthUserGetResponse { header: Some(self.header()), roles }))
    }

    async fn user_list(&self, req: Request<AuthUserListRequest>) -> Result<Response<AuthUserListResponse>, Status> {
        gate::caller(&self.member, &req).await?.admin(&self.member)?;
        self.member.linearizable_barrier().await?;
        let users = self.member.state_machine.mvcc().read_state(|s| s.auth.users.keys().cloned().collect());
        Ok(Response::new(AuthUserListResponse { header: Some(self.header()), users }))
    }

    async fn user_delete(
        &self,
        req: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let op = Op::UserDelete(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthUserDeleteResponse { header: Some(header) }))
    }

    async fn user_change_password(
        &self,
        req: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        caller.admin(&self.member)?;
        let mut change = req.into_inner();
        change.password = hash(change.password).await?;
        let (_, revision) = self.member.write_as(&caller, Op::UserChangePassword(change)).await?;
        Ok(Response::new(AuthUserChangePasswordResponse { header: Some(self.member.header(revision)) }))
    }

    async fn user_grant_role(
        &self,
        req: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let op = Op::UserGrantRole(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthUserGrantRoleResponse { header: Some(header) }))
    }

    async fn user_revoke_role(
        &self,
        req: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let op = Op::UserRevokeRole(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthUserRevokeRoleResponse { header: Some(header) }))
    }

    async fn role_add(&self, req: Request<AuthRoleAddRequest>) -> Result<Response<AuthRoleAddResponse>, Status> {
        let op = Op::RoleAdd(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthRoleAddResponse { header: Some(header) }))
    }

    async fn role_get(&self, req: Request<AuthRoleGetRequest>) -> Result<Response<AuthRoleGetResponse>, Status> {
        let caller: Caller = gate::caller(&self.member, &req).await?;
        let role = req.into_inner().role;
        let mvcc = self.member.state_machine.mvcc();
        // A user may look at the roles it holds; other roles are for root.
        let holds = caller.user().is_some_and(|u| {
            mvcc.read_state(|s| s.auth.users.get(u).is_some_and(|x| x.roles.iter().any(|r| r == &role)))
        });
        if !holds {
            caller.admin(&self.member)?;
        }
        self.member.linearizable_barrier().await?;
        let perm = mvcc
            .read_state(|s| s.auth.roles.get(&role).map(|r| r.key_permission.clone()))
            .ok_or(EtcdError::RoleNotFound)?;
        Ok(Response::new(AuthRoleGetResponse { header: Some(self.header()), perm }))
    }

    async fn role_list(&self, req: Request<AuthRoleListRequest>) -> Result<Response<AuthRoleListResponse>, Status> {
        gate::caller(&self.member, &req).await?.admin(&self.member)?;
        self.member.linearizable_barrier().await?;
        let roles = self.member.state_machine.mvcc().read_state(|s| s.auth.roles.keys().cloned().collect());
        Ok(Response::new(AuthRoleListResponse { header: Some(self.header()), roles }))
    }

    async fn role_delete(
        &self,
        req: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let op = Op::RoleDelete(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthRoleDeleteResponse { header: Some(header) }))
    }

    async fn role_grant_permission(
        &self,
        req: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let op = Op::RoleGrantPermission(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse { header: Some(header) }))
    }

    async fn role_revoke_permission(
        &self,
        req: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let op = Op::RoleRevokePermission(req.get_ref().clone());
        let header = self.admin_change(&req, op).await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse { header: Some(header) }))
    }
}
