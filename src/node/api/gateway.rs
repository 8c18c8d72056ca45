//! etcd 3.4's HTTP/JSON gateway, on the same mTLS client port as gRPC: `POST /v3/kv/range`
//! with the request as JSON, the answer as JSON, in grpc-gateway's mapping (proto field
//! names, 64-bit integers as strings, bytes as base64). `/v3beta/` is accepted too, as etcd
//! 3.4 does. A token goes in the `Authorization` header.
//!
//! Every call is handed to the same service the gRPC request would reach, so the answers and
//! the errors are the same. A gateway request acts as its token's user only: like etcd 3.4's
//! gateway, it never acts as the client certificate's CN, and while auth is on it refuses a
//! certificate that carries one (etcd 3.4.23's words and status, [`GATEWAY_IGNORES_CN`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;

use bytes::Bytes;
use http_body_util::BodyExt;
use tonic::Code;
use tonic::Status;

use crate::node::api::auth::AuthService;
use crate::node::api::cluster::ClusterService;
use crate::node::api::kv::KvService;
use crate::node::api::lease::LeaseService;
use crate::node::api::maintenance::MaintenanceService;
use crate::node::api::watch::WatchService;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;

/// The services the gateway hands requests to.
pub struct Gateway {
    pub kv: KvService,
    pub lease: LeaseService,
    pub cluster: ClusterService,
    pub maintenance: MaintenanceService,
    pub auth: AuthService,
    pub watch: WatchService,
}

type Answer = http::Response<tonic::body::Body>;

fn json_answer(status: http::StatusCode, body: Vec<u8>) -> Answer {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(body))))
        .expect("a valid response")
}

/// What etcd 3.4.23 answers (400, as plain text) to a gateway request whose client
/// certificate carries a CN while auth is on: its gateway would not act as that CN, so it
/// refuses rather than act as someone else. A certificate without a CN and a token get in.
pub const GATEWAY_IGNORES_CN: &str =
    "CommonName of client sending a request against gateway will be ignored and not used as expected";

/// An answer as Go's `http.Error` writes it: the text and a newline.
fn text_answer(status: http::StatusCode, text: &str) -> Answer {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(format!("{text}\n")))))
        .expect("a valid response")
}

/// grpc-gateway's error body and HTTP status for a gRPC error.
fn error_answer(status: &Status) -> Answer {
    let http = match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => http::StatusCode::BAD_REQUEST,
        Code::Unauthenticated => http::StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => http::StatusCode::FORBIDDEN,
        Code::NotFound => http::StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => http::StatusCode::CONFLICT,
        Code::ResourceExhausted => http::StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => http::StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => http::StatusCode::GATEWAY_TIMEOUT,
        _ => http::StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body =
        serde_json::json!({ "error": status.message(), "message": status.message(), "code": status.code() as i32 });
    json_answer(http, body.to_string().into_bytes())
}

/// Decodes the JSON body, calls the service with the token, encodes its answer.
macro_rules! unary {
    ($body:expr, $token:expr, $service:expr, $method:ident, $req:ty) => {{
        let request: $req = if $body.iter().all(|b| b.is_ascii_whitespace()) {
            Default::default()
        } else {
            match serde_json::from_slice(&$body) {
                Ok(r) => r,
                Err(e) => {
                    return error_answer(&Status::invalid_argument(format!("the request is not valid JSON: {e}")));
                }
            }
        };
        let mut request = tonic::Request::new(request);
        if let Some(token) = $token.as_deref().and_then(|t| t.parse().ok()) {
            request.metadata_mut().insert("token", token);
        }
        match $service.$method(request).await {
            Ok(response) => match serde_json::to_vec(response.get_ref()) {
                Ok(body) => json_answer(http::StatusCode::OK, body),
                Err(e) => error_answer(&Status::internal(format!("encoding the answer: {e}"))),
            },
            Err(status) => error_answer(&status),
        }
    }};
}

impl Gateway {
    async fn handle(&self, req: http::Request<tonic::body::Body>) -> Answer {
        use crate::proto::etcdserverpb::*;
        let path = req.uri().path().to_string();
        let route = path.strip_prefix("/v3/").or_else(|| path.strip_prefix("/v3beta/")).unwrap_or_default().to_string();
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string());
        if self.refuses_common_name(&req) {
            return text_answer(http::StatusCode::BAD_REQUEST, GATEWAY_IGNORES_CN);
        }
        if req.method() != http::Method::POST {
            return error_answer(&Status::unimplemented(format!("{} {path}: the gateway takes POST", req.method())));
        }
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error_answer(&Status::invalid_argument(format!("reading the request: {e}"))),
        };
        match route.as_str() {
            "watch" => self.watch(&body, token).await,
            "kv/range" => unary!(body, token, self.kv, range, RangeRequest),
            "kv/put" => unary!(body, token, self.kv, put, PutRequest),
            "kv/deleterange" => unary!(body, token, self.kv, delete_range, DeleteRangeRequest),
            "kv/txn" => unary!(body, token, self.kv, txn, TxnRequest),
            "kv/compaction" => unary!(body, token, self.kv, compact, CompactionRequest),
            "lease/grant" => unary!(body, token, self.lease, lease_grant, LeaseGrantRequest),
            "lease/revoke" | "kv/lease/revoke" => unary!(body, token, self.lease, lease_revoke, LeaseRevokeRequest),
            "lease/timetolive" | "kv/lease/timetolive" => {
                unary!(body, token, self.lease, lease_time_to_live, LeaseTimeToLiveRequest)
            }
            "lease/leases" | "kv/lease/leases" => unary!(body, token, self.lease, lease_leases, LeaseLeasesRequest),
            "cluster/member/list" => unary!(body, token, self.cluster, member_list, MemberListRequest),
            "maintenance/status" => unary!(body, token, self.maintenance, status, StatusRequest),
            "maintenance/alarm" => unary!(body, token, self.maintenance, alarm, AlarmRequest),
            "auth/enable" => unary!(body, token, self.auth, auth_enable, AuthEnableRequest),
            "auth/disable" => unary!(body, token, self.auth, auth_disable, AuthDisableRequest),
            "auth/authenticate" => unary!(body, token, self.auth, authenticate, AuthenticateRequest),
            "auth/user/add" => unary!(body, token, self.auth, user_add, AuthUserAddRequest),
            "auth/user/get" => unary!(body, token, self.auth, user_get, AuthUserGetRequest),
            "auth/user/list" => unary!(body, token, self.auth, user_list, AuthUserListRequest),
            "auth/user/delete" => unary!(body, token, self.auth, user_delete, AuthUserDeleteRequest),
            "auth/user/changepw" => unary!(body, token, self.auth, user_change_password, AuthUserChangePasswordRequest),
            "auth/user/grant" => unary!(body, token, self.auth, user_grant_role, AuthUserGrantRoleRequest),
            "auth/user/revoke" => unary!(body, token, self.auth, user_revoke_role, AuthUserRevokeRoleRequest),
            "auth/role/add" => unary!(body, token, self.auth, role_add, AuthRoleAddRequest),
            "auth/role/get" => unary!(body, token, self.auth, role_get, AuthRoleGetRequest),
            "auth/role/list" => unary!(body, token, self.auth, role_list, AuthRoleListRequest),
            "auth/role/delete" => unary!(body, token, self.auth, role_delete, AuthRoleDeleteRequest),
            "auth/role/grant" => unary!(body, token, self.auth, role_grant_permission, AuthRoleGrantPermissionRequest),
            "auth/role/revoke" => {
                unary!(body, token, self.auth, role_revoke_permission, AuthRoleRevokePermissionRequest)
            }
            _ => error_answer(&Status::new(Code::NotFound, format!("no gateway route {path}"))),
        }
    }
}

impl Gateway {
    /// Whether auth is on and the connection's client certificate carries a CN.
    fn refuses_common_name<B>(&self, req: &http::Request<B>) -> bool {
        let auth_on = self.watch.member().state_machine.mvcc().read_state(|s| s.auth.enabled);
        auth_on
            && req
                .extensions()
                .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
                .and_then(|info| info.peer_certs())
                .and_then(|certs| certs.first().and_then(|c| crate::pki::common_name(c.as_ref())))
                .is_some()
    }

    /// `POST /v3/watch` with a create request: an endless answer, one `{"result": ...}` JSON
    /// object per line for each watch response, as etcd's gateway streams it.
    async fn watch(&self, body: &[u8], token: Option<String>) -> Answer {
        use futures::StreamExt;
        let request: crate::proto::etcdserverpb::WatchRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return error_answer(&Status::invalid_argument(format!("the request is not valid JSON: {e}"))),
        };
        let mut probe = tonic::Request::new(());
        if let Some(t) = token.as_deref().and_then(|t| t.parse().ok()) {
            probe.metadata_mut().insert("token", t);
        }
        let caller = match crate::node::auth::gate::caller(self.watch.member(), &probe).await {
            Ok(c) => c,
            Err(e) => return error_answer(&e.into()),
        };
        // The one request, then nothing more: the watch lasts until the client hangs up.
        let requests = futures::stream::iter([Ok(request)]).chain(futures::stream::pending());
        let responses = self.watch.open(caller, Box::pin(requests), false).map(|r| {
            let line = match r {
                Ok(resp) => serde_json::json!({ "result": resp }),
                Err(s) => serde_json::json!({ "error": { "code": s.code() as i32, "message": s.message() } }),
            };
            let mut bytes = line.to_string().into_bytes();
            bytes.push(b'\n');
            Ok::<_, Status>(http_body::Frame::data(Bytes::from(bytes)))
        });
        http::Response::builder()
            .status(http::StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(tonic::body::Body::new(http_body_util::StreamBody::new(responses)))
            .expect("a valid response")
    }
}

/// Puts the gateway in front of the gRPC services: `/v3/...` requests that are not gRPC go
/// to it, everything else goes on.
#[derive(Clone)]
pub struct GatewayLayer {
    pub gateway: Arc<Gateway>,
}

impl<S> tower::Layer<S> for GatewayLayer {
    type Service = GatewayService<S>;

    fn layer(&self, inner: S) -> GatewayService<S> {
        GatewayService { inner, gateway: self.gateway.clone() }
    }
}

#[derive(Clone)]
pub struct GatewayService<S> {
    inner: S,
    gateway: Arc<Gateway>,
}

fn is_gateway_request<B>(req: &http::Request<B>) -> bool {
    let path = req.uri().path();
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    !grpc && (path.starts_with("/v3/") || path.starts_with("/v3beta/"))
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for GatewayService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = Answer, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if !is_gateway_request(&req) {
            return Box::pin(self.inner.call(req));
        }
        let gateway = self.gateway.clone();
        Box::pin(async move { Ok(gateway.handle(req).await) })
    }
}
