//! The lab's certificate authority, and the TLS settings of every port.
//!
//! Each lab has its own CA. Members get a certificate valid both as server and as client
//! (peers dial each other with it), with the names `localhost` and `127.0.0.1`, so etcdctl
//! can verify whichever it dials. People and scripts use the `root` client certificate
//! (etcd's superuser name); the lab supervisor uses `admin` for the members' admin surface.
//! There is no plaintext listener anywhere: every server requires a client certificate
//! signed by the lab's CA.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Once;

use anyhow::Context;
use anyhow::Result;
use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::DistinguishedName;
use rcgen::DnType;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::Issuer;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;
use time::Duration;
use time::OffsetDateTime;
use tonic::transport::Certificate;
use tonic::transport::ClientTlsConfig;
use tonic::transport::Identity;

/// The common name of the lab supervisor's certificate, the only one the admin surface accepts.
pub const ADMIN_NAME: &str = "raftty-admin";
/// The organization of member certificates: what lets a certificate speak on a peer port.
pub const MEMBER_ORG: &str = "raftty member";
/// The common name of the client certificate handed to people and scripts.
pub const ROOT_NAME: &str = "root";

const CA_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
const VALIDITY_DAYS: i64 = 3650;

/// rustls refuses to pick between two compiled-in crypto backends at run time; raftty
/// builds only ring, and installs it before anything touches TLS.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The files of one certificate: what a TLS client or server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// TLS settings for a client presenting this certificate and trusting only `ca`.
    pub fn client_tls(&self) -> Result<ClientTlsConfig> {
        install_crypto_provider();
        Ok(ClientTlsConfig::new().ca_certificate(self.ca_certificate()?).identity(self.identity()?))
    }

    /// rustls settings for a client presenting this certificate, trusting only servers with
    /// one from its CA, and offering only `alpn`: the metrics scraper's and the append
    /// link's (tonic's clients use [`Self::client_tls`]).
    pub fn rustls_client(&self, alpn: &[u8]) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        install_crypto_provider();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(self.rustls_roots()?)
            .with_client_auth_cert(self.rustls_chain()?, self.rustls_key()?)
            .with_context(|| format!("client certificate {}", self.cert.display()))?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(std::sync::Arc::new(config))
    }

    /// The lab's CA as rustls' only trust root.
    pub fn rustls_roots(&self) -> Result<rustls::RootCertStore> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls::pki_types::CertificateDer::pem_file_iter(&self.ca)
            .with_context(|| format!("reading CA certificate {}", self.ca.display()))?
        {
            let ca = ca.with_context(|| format!("parsing CA certificate {}", self.ca.display()))?;
            roots.add(ca).with_context(|| format!("using CA certificate {}", self.ca.display()))?;
        }
        Ok(roots)
    }

    /// This certificate (and any chain after it) for rustls.
    pub fn rustls_chain(&self) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading certificate {}", self.cert.display()))
    }

    /// This certificate's private key for rustls.
    pub fn rustls_key(&self) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading private key {}", self.key.display()))
    }

    fn identity(&self) -> Result<Identity> {
        let cert = fs::read(&self.cert).with_context(|| format!("reading certificate {}", self.cert.display()))?;
        let key = fs::read(&self.key).with_context(|| format!("reading private key {}", self.key.display()))?;
        Ok(Identity::from_pem(cert, key))
    }

    fn ca_certificate(&self) -> Result<Certificate> {
        let ca = fs::read(&self.ca).with_context(|| format!("reading CA certificate {}", self.ca.display()))?;
        Ok(Certificate::from_pem(ca))
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// A cluster member: server and client, on the client, peer and admin ports.
    Member,
    /// A client of the etcd API (people, scripts, the benchmark).
    Client,
    /// The lab supervisor, on the members' admin surface.
    Admin,
    /// A person's identity (`raftty cert issue NAME`): a client certificate whose CN is the
    /// etcd user it acts as, kept under `users/`.
    User,
}

/// The kinds of user certificate `raftty cert issue` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserShape {
    /// A client certificate with CN = the user: the usual identity.
    #[default]
    Client,
    /// Usable by servers only (no client authentication): members refuse it, which is the
    /// point of a "wrong key usage" drill.
    ServerOnly,
    /// A client certificate with no CN (the name goes in O). etcd 3.4's gateway refuses
    /// certificates carrying a CN while auth is on, so curl needs one of these and a token.
    WithoutCommonName,
}

/// A lab's certificate authority: a folder with the CA and every certificate it issued.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Creates the folder with a new CA and the `root` and `admin` client certificates.
    pub fn create(dir: &Path) -> Result<Pki> {
        install_crypto_provider();
        create_private_dir(dir)?;
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(&format!("raftty lab CA {}", dir.display()), None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, OffsetDateTime::now_utc() - Duration::hours(1), VALIDITY_DAYS);
        let cert = params.self_signed(&key).context("signing the CA certificate")?;
        write_public(&dir.join(CA_FILE), cert.pem().as_bytes())?;
        write_private(&dir.join(CA_KEY_FILE), key.serialize_pem().as_bytes())?;
        let pki = Pki { dir: dir.to_path_buf() };
        pki.issue(ROOT_NAME, CertRole::Client)?;
        pki.issue(ADMIN_NAME, CertRole::Admin)?;
        Ok(pki)
    }

    /// Opens an existing CA folder.
    pub fn open(dir: &Path) -> Result<Pki> {
        let ca = dir.join(CA_FILE);
        anyhow::ensure!(ca.exists(), "no certificate authority at {} (missing {})", dir.display(), ca.display());
        Ok(Pki { dir: dir.to_path_buf() })
    }

    /// The CA folder at `dir`, without checking that it holds a CA yet.
    pub fn at(dir: &Path) -> Pki {
        Pki { dir: dir.to_path_buf() }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }

    /// The files of the certificate called `name` (issued or not).
    pub fn files(&self, name: &str) -> CertFiles {
        CertFiles {
            ca: self.ca_path(),
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// Issues (or re-issues) the certificate `name`, valid for ten years from now.
    pub fn issue(&self, name: &str, role: CertRole) -> Result<CertFiles> {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(name, role, now - Duration::hours(1), now + Duration::days(VALIDITY_DAYS))
    }

    /// Issues the certificate `name` with an explicit validity window; tests use it to make
    /// certificates that are expired or not yet valid.
    pub fn issue_valid(
        &self,
        name: &str,
        role: CertRole,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<CertFiles> {
        self.issue_shaped(name, role, UserShape::Client, not_before, not_after)
    }

    /// Issues user `name`'s certificate in one of the shapes refusal drills and the
    /// gateway need (see [`UserShape`]).
    pub fn issue_user(
        &self,
        name: &str,
        shape: UserShape,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<CertFiles> {
        self.issue_shaped(name, CertRole::User, shape, not_before, not_after)
    }

    fn issue_shaped(
        &self,
        name: &str,
        role: CertRole,
        shape: UserShape,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<CertFiles> {
        install_crypto_provider();
        let ca_key_pem = fs::read_to_string(self.dir.join(CA_KEY_FILE))
            .with_context(|| format!("reading the CA key in {}", self.dir.display()))?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing the CA key")?;
        let ca_pem = fs::read_to_string(self.ca_path())?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("parsing the CA certificate")?;

        let sans = match role {
            CertRole::Member => vec!["localhost".to_string(), "127.0.0.1".to_string()],
            CertRole::Client | CertRole::Admin | CertRole::User => vec![],
        };
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = match shape {
            UserShape::WithoutCommonName => {
                let mut dn = DistinguishedName::new();
                dn.push(DnType::OrganizationName, name);
                dn
            }
            UserShape::Client | UserShape::ServerOnly => name_for(name, role),
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match (role, shape) {
            (_, UserShape::ServerOnly) => vec![ExtendedKeyUsagePurpose::ServerAuth],
            (CertRole::Member, _) => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            (CertRole::Client | CertRole::Admin | CertRole::User, _) => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer).with_context(|| format!("signing the certificate of {name}"))?;
        let files = match role {
            CertRole::User => self.user_files(name),
            _ => self.files(name),
        };
        if let Some(dir) = files.cert.parent() {
            create_private_dir(dir)?;
        }
        write_public(&files.cert, cert.pem().as_bytes())?;
        write_private(&files.key, key.serialize_pem().as_bytes())?;
        Ok(files)
    }

    /// Where the certificate of user `name` lives: `users/NAME.crt` and `.key`.
    pub fn user_files(&self, name: &str) -> CertFiles {
        let dir = self.dir.join(USERS_DIR);
        CertFiles { ca: self.ca_path(), cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) }
    }

    /// Every certificate of the lab: the CA, the members', the lab's clients', the users'.
    pub fn certificate_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in [self.dir.clone(), self.dir.join(USERS_DIR)] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            let mut found: Vec<PathBuf> =
                entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
            found.sort();
            out.extend(found);
        }
        out
    }
}

/// Where per-user certificates go, inside the lab's pki folder.
pub const USERS_DIR: &str = "users";

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn name_for(common_name: &str, role: CertRole) -> DistinguishedName {
    match role {
        CertRole::Member => name(common_name, Some(MEMBER_ORG)),
        CertRole::Client | CertRole::Admin | CertRole::User => name(common_name, None),
    }
}

fn set_validity(params: &mut CertificateParams, not_before: OffsetDateTime, days: i64) {
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(days);
}

/// Who is on the other end of a TLS connection: the subject of the first peer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub common_name: String,
    pub organization: Option<String>,
}

impl PeerIdentity {
    /// Reads the identity of the client of a gRPC request, if it presented a certificate.
    ///
    /// Parsing a certificate costs more than the rest of a Raft append's checks, and the same
    /// few certificates (the other members', the app's) come with every request, so the last
    /// ones seen are remembered, keyed by their bytes.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<PeerIdentity> {
        static RECENT: std::sync::Mutex<Vec<(Vec<u8>, Option<PeerIdentity>)>> = std::sync::Mutex::new(Vec::new());
        const REMEMBERED: usize = 16;
        let certs = request.peer_certs()?;
        let der = certs.first()?.as_ref();
        let mut recent = RECENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, identity)) = recent.iter().find(|(seen, _)| seen.as_slice() == der) {
            return identity.clone();
        }
        let identity = PeerIdentity::of_der(der);
        if recent.len() == REMEMBERED {
            recent.remove(0);
        }
        recent.push((der.to_vec(), identity.clone()));
        identity
    }

    /// The identity in a DER certificate; None if it has no CN or does not parse.
    pub fn of_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let common_name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let organization = subject.iter_organization().next().and_then(|o| o.as_str().ok()).map(str::to_string);
        Some(PeerIdentity { common_name, organization })
    }

    pub fn is_member(&self) -> bool {
        self.organization.as_deref() == Some(MEMBER_ORG)
    }

    pub fn is_admin(&self) -> bool {
        self.common_name == ADMIN_NAME && self.organization.is_none()
    }
}

/// The CN of a DER certificate, if it has one.
pub fn common_name(der: &[u8]) -> Option<String> {
    PeerIdentity::of_der(der).map(|id| id.common_name)
}

/// Refuses a request on a peer port unless it comes from a cluster member's certificate.
pub fn require_member<T>(req: &tonic::Request<T>) -> Result<(), tonic::Status> {
    require_member_identity(PeerIdentity::of(req))
}

/// Refuses a peer-port client unless `identity`, its certificate's, is a member's.
pub fn require_member_identity(identity: Option<PeerIdentity>) -> Result<(), tonic::Status> {
    match identity {
        Some(id) if id.is_member() => Ok(()),
        Some(id) => Err(tonic::Status::permission_denied(format!(
            "the peer port is for cluster members; certificate {:?} is not a member's",
            id.common_name
        ))),
        None => Err(tonic::Status::unauthenticated("the peer port requires a member certificate")),
    }
}

/// Creates `dir` (and parents) readable by the owner only: it holds private keys and data.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    Ok(())
}

/// Writes a private key so that it is never readable by others, not even for an instant.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("key.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_certificates_carry_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(&dir.path().join("pki")).unwrap();
        let member = pki.issue("n1", CertRole::Member).unwrap();
        for key in [&member.key, &pki.files(ROOT_NAME).key, &dir.path().join("pki").join(CA_KEY_FILE)] {
            let mode = fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is readable by others", key.display());
        }
        let pem = fs::read(&member.cert).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let sans = cert.subject_alternative_name().unwrap().unwrap().value.general_names.clone();
        let text = format!("{sans:?}");
        assert!(text.contains("localhost") && text.contains("IPAddress([127, 0, 0, 1])"), "member SANs: {text}");
        assert_eq!(cert.subject().iter_organization().next().unwrap().as_str().unwrap(), MEMBER_ORG);
    }

    #[test]
    fn opening_a_folder_without_a_ca_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Pki::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("no certificate authority"), "{err}");
    }
}
