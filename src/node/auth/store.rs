//! The replicated auth state and the changes to it, applied by every member in log order.

use std::collections::BTreeMap;
use std::collections::VecDeque;

use crate::errors::EtcdError;
use crate::proto::authpb::Permission;
use crate::proto::authpb::Role;
use crate::proto::authpb::User;
use crate::proto::etcdserverpb::AuthenticateResponse;
use crate::proto::rafttypb::AuthDone;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;
use crate::proto::rafttystore::AuthRecord;

pub const ROOT_USER: &str = "root";
pub const ROOT_ROLE: &str = "root";

/// Simple tokens kept at most, oldest dropped first (etcdctl authenticates once per command).
const MAX_TOKENS: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthState {
    pub enabled: bool,
    pub revision: u64,
    pub users: BTreeMap<String, User>,
    pub roles: BTreeMap<String, Role>,
    /// Simple tokens and their users. In memory only: like etcd, a restarted member forgets
    /// them, and clients authenticate again.
    pub tokens: BTreeMap<String, String>,
    token_order: VecDeque<String>,
}

impl AuthState {
    pub fn from_record(r: &AuthRecord) -> AuthState {
        AuthState {
            enabled: r.enabled,
            revision: r.revision,
            users: r.users.iter().map(|u| (String::from_utf8_lossy(&u.name).into_owned(), u.clone())).collect(),
            roles: r.roles.iter().map(|x| (String::from_utf8_lossy(&x.name).into_owned(), x.clone())).collect(),
            ..Default::default()
        }
    }

    pub fn record(&self) -> AuthRecord {
        AuthRecord {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
    }

    pub fn has_root_role(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.roles.iter().any(|r| r == ROOT_ROLE))
    }

    /// Every permission the user holds, through all its roles.
    pub fn permissions_of(&self, user: &str) -> Vec<Permission> {
        let Some(u) = self.users.get(user) else { return vec![] };
        u.roles.iter().filter_map(|r| self.roles.get(r)).flat_map(|r| r.key_permission.iter().cloned()).collect()
    }

    fn changed(&mut self) {
        self.revision += 1;
    }

    fn forget_tokens_of(&mut self, user: &str) {
        self.tokens.retain(|_, u| u != user);
        let tokens = &self.tokens;
        self.token_order.retain(|t| tokens.contains_key(t));
    }
}

/// Applies one auth change with etcd 3.4's rules. A refused change changes nothing.
pub fn apply(auth: &mut AuthState, op: &Op) -> Result<Outcome, EtcdError> {
    let done = Ok(Outcome::AuthDone(AuthDone {}));
    match op {
        Op::AuthEnable(_) => {
            if auth.enabled {
                return done;
            }
            if !auth.users.contains_key(ROOT_USER) {
                return Err(EtcdError::RootUserNotExist);
            }
            if !auth.has_root_role(ROOT_USER) {
                return Err(EtcdError::RootRoleNotExist);
            }
            auth.enabled = true;
            auth.changed();
            done
        }
        Op::AuthDisable(_) => {
            if auth.enabled {
                auth.enabled = false;
                auth.tokens.clear();
                auth.token_order.clear();
                auth.changed();
            }
            done
        }
        Op::UserAdd(r) => {
            if r.name.is_empty() {
                return Err(EtcdError::UserEmpty);
            }
            if auth.users.contains_key(&r.name) {
                return Err(EtcdError::UserAlreadyExist);
            }
            let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
            let user = User {
                name: r.name.clone().into_bytes().into(),
                password: if no_password { Default::default() } else { r.password.clone().into_bytes().into() },
                roles: vec![],
                options: r.options,
            };
            auth.users.insert(r.name.clone(), user);
            auth.changed();
            done
        }
        Op::UserDelete(r) => {
            if auth.enabled && r.name == ROOT_USER {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            if auth.users.remove(&r.name).is_none() {
                return Err(EtcdError::UserNotFound);
            }
            auth.forget_tokens_of(&r.name);
            auth.changed();
            done
        }
        Op::UserChangePassword(r) => {
            let user = auth.users.get_mut(&r.name).ok_or(EtcdError::UserNotFound)?;
            user.password = r.password.clone().into_bytes().into();
            auth.forget_tokens_of(&r.name);
            auth.changed();
            done
        }
        Op::UserGrantRole(r) => {
            if r.role != ROOT_ROLE && !auth.roles.contains_key(&r.role) {
                if !auth.users.contains_key(&r.user) {
                    return Err(EtcdError::UserNotFound);
                }
                return Err(EtcdError::RoleNotFound);
            }
            let user = auth.users.get_mut(&r.user).ok_or(EtcdError::UserNotFound)?;
            if let Err(at) = user.roles.binary_search(&r.role) {
                user.roles.insert(at, r.role.clone());
                auth.changed();
            }
            done
        }
        Op::UserRevokeRole(r) => {
            if auth.enabled && r.name == ROOT_USER && r.role == ROOT_ROLE {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            let user = auth.users.get_mut(&r.name).ok_or(EtcdError::UserNotFound)?;
            let at = user.roles.iter().position(|x| x == &r.role).ok_or(EtcdError::RoleNotGranted)?;
            user.roles.remove(at);
            auth.changed();
            done
        }
        Op::RoleAdd(r) => {
            if r.name.is_empty() {
                return Err(EtcdError::RoleEmpty);
            }
            if auth.roles.contains_key(&r.name) {
                return Err(EtcdError::RoleAlreadyExist);
            }
            auth.roles
                .insert(r.name.clone(), Role { name: r.name.clone().into_bytes().into(), key_permission: vec![] });
            auth.changed();
            done
        }
        Op::RoleDelete(r) => {
            if auth.enabled && r.role == ROOT_ROLE {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            if auth.roles.remove(&r.role).is_none() {
                return Err(EtcdError::RoleNotFound);
            }
            for user in auth.users.values_mut() {
                user.roles.retain(|x| x != &r.role);
            }
            auth.changed();
            done
        }
        Op::RoleGrantPermission(r) => {
            let role = auth.roles.get_mut(&r.name).ok_or(EtcdError::RoleNotFound)?;
            let perm = r.perm.clone().unwrap_or_default();
            // Same key and range: the new type replaces the old, as in etcd.
            match role.key_permission.iter_mut().find(|p| p.key == perm.key && p.range_end == perm.range_end) {
                Some(existing) => existing.perm_type = perm.perm_type,
                None => {
                    role.key_permission.push(perm);
                    role.key_permission.sort_by(|a, b| a.key.cmp(&b.key).then(a.range_end.cmp(&b.range_end)));
                }
            }
            auth.changed();
            done
        }
        Op::RoleRevokePermission(r) => {
            let role = auth.roles.get_mut(&r.role).ok_or(EtcdError::RoleNotFound)?;
            let at = role
                .key_permission
                .iter()
                .position(|p| p.key == r.key && p.range_end == r.range_end)
                .ok_or(EtcdError::PermissionNotGranted)?;
            role.key_permission.remove(at);
            auth.changed();
            done
        }
        Op::AssignToken(t) => {
            if !auth.enabled {
                return Err(EtcdError::AuthNotEnabled);
            }
            if !auth.users.contains_key(&t.user) {
                return Err(EtcdError::AuthFailed);
            }
            let token = format!("{}.{}", t.prefix, auth.revision);
            auth.tokens.insert(token.clone(), t.user.clone());
            auth.token_order.push_back(token.clone());
            while auth.token_order.len() > MAX_TOKENS {
                if let Some(old) = auth.token_order.pop_front() {
                    auth.tokens.remove(&old);
                }
            }
            Ok(Outcome::Authenticated(AuthenticateResponse { header: None, token }))
        }
        _ => Err(EtcdError::Internal("not an auth change".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::authpb::permission::Type;
    use crate::proto::etcdserverpb::*;

    fn ok(auth: &mut AuthState, op: Op) {
        apply(auth, &op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }

    fn user_add(name: &str) -> Op {
        Op::UserAdd(AuthUserAddRequest { name: name.into(), password: "$2b$hash".into(), options: None })
    }

    #[test]
    fn enable_needs_root_with_the_root_role_with_etcds_exact_errors() {
        let mut auth = AuthState::default();
        assert_eq!(apply(&mut auth, &Op::AuthEnable(AuthEnableRequest {})), Err(EtcdError::RootUserNotExist));
        ok(&mut auth, user_add("root"));
        assert_eq!(apply(&mut auth, &Op::AuthEnable(AuthEnableRequest {})), Err(EtcdError::RootRoleNotExist));
        let grant = Op::UserGrantRole(AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() });
        let writer = Op::UserGrantRole(AuthUserGrantRoleRequest { user: "root".into(), role: "writer".into() });
        assert_eq!(apply(&mut auth, &writer), Err(EtcdError::RoleNotFound));
        // As in etcd, the root role may be granted before it exists as a role.
        ok(&mut auth, grant);
        ok(&mut auth, Op::AuthEnable(AuthEnableRequest {}));
        assert!(auth.enabled);
        let delete_root = Op::UserDelete(AuthUserDeleteRequest { name: "root".into() });
        assert_eq!(apply(&mut auth, &delete_root), Err(EtcdError::InvalidAuthMgmt));
    }

    #[test]
    fn users_roles_and_permissions_follow_etcds_rules() {
        let mut auth = AuthState::default();
        ok(&mut auth, user_add("alice"));
        assert_eq!(apply(&mut auth, &user_add("alice")), Err(EtcdError::UserAlreadyExist));
        assert_eq!(apply(&mut auth, &user_add("")), Err(EtcdError::UserEmpty));
        ok(&mut auth, Op::RoleAdd(AuthRoleAddRequest { name: "reader".into() }));
        let perm = Permission {
            perm_type: Type::Read as i32,
            key: b"/app/".to_vec().into(),
            range_end: b"/app0".to_vec().into(),
        };
        let grant =
            Op::RoleGrantPermission(AuthRoleGrantPermissionRequest { name: "reader".into(), perm: Some(perm.clone()) });
        ok(&mut auth, grant);
        ok(&mut auth, Op::UserGrantRole(AuthUserGrantRoleRequest { user: "alice".into(), role: "reader".into() }));
        assert_eq!(auth.permissions_of("alice"), vec![perm]);
        let revoke = Op::RoleRevokePermission(AuthRoleRevokePermissionRequest {
            role: "reader".into(),
            key: b"/other".to_vec().into(),
            range_end: Default::default(),
        });
        assert_eq!(apply(&mut auth, &revoke), Err(EtcdError::PermissionNotGranted));
        let not_granted = Op::UserRevokeRole(AuthUserRevokeRoleRequest { name: "alice".into(), role: "writer".into() });
        assert_eq!(apply(&mut auth, &not_granted), Err(EtcdError::RoleNotGranted));
        ok(&mut auth, Op::RoleDelete(AuthRoleDeleteRequest { role: "reader".into() }));
        assert!(auth.users["alice"].roles.is_empty(), "deleting a role takes it from its users");
        let revision = auth.revision;
        assert_eq!(AuthState::from_record(&auth.record()).revision, revision);
    }
}
