//! `raftty cert`: per-user identities signed by the lab's CA, and certificates explained.
//!
//! A user certificate's CN is the etcd user it acts as when a request carries no token (etcd's
//! client-certificate auth); `raftty env --user NAME` points etcdctl at it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use serde::Serialize;
use sha2::Digest;
use x509_parser::extensions::ParsedExtension;

use crate::lab::Lab;
use crate::pki::CertFiles;
use crate::pki::Pki;
use crate::pki::UserShape;

/// What `raftty cert issue` makes.
#[derive(Debug, Clone, Copy)]
pub struct IssueOptions {
    pub valid_for: Duration,
    /// One that expired yesterday (for refusal drills).
    pub expired: bool,
    pub shape: UserShape,
}

/// Issues the certificate of user `name`: valid for `valid_for` from now, or, with `expired`,
/// one that expired yesterday.
pub fn issue(lab: &Lab, name: &str, options: IssueOptions) -> Result<CertFiles> {
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)),
        "a user name for a certificate may hold letters, digits and . _ - @ (got {name:?})"
    );
    let pki = Pki::open(&lab.pki_dir())?;
    let now = time::OffsetDateTime::now_utc();
    let (from, until) = if options.expired {
        (now - time::Duration::days(2), now - time::Duration::days(1))
    } else {
        let span = time::Duration::try_from(options.valid_for).context("that validity is too long")?;
        (now - time::Duration::minutes(5), now + span)
    };
    pki.issue_user(name, options.shape, from, until)
}

/// What a certificate says, in the terms people check.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertInfo {
    pub file: String,
    pub common_name: String,
    pub organization: Option<String>,
    pub issuer: String,
    /// server, client, or both
    pub usage: String,
    pub not_before: String,
    pub not_after: String,
    pub expired: bool,
    pub names: Vec<String>,
    /// SHA-256 of the DER bytes, as `openssl x509 -fingerprint -sha256` prints it
    pub fingerprint: String,
    /// Whether the lab's CA signed it (None when not asked against a lab)
    pub signed_by_lab: Option<bool>,
}

pub fn inspect(path: &Path, lab_ca: Option<&Path>) -> Result<CertInfo> {
    let pem_text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_text)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", path.display()))?;
    let cert =
        pem.parse_x509().map_err(|e| anyhow::anyhow!("{} holds no valid X.509 certificate: {e}", path.display()))?;
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let common_name = first(&mut cert.subject().iter_common_name()).unwrap_or_default();
    let organization = first(&mut cert.subject().iter_organization());
    let mut server = false;
    let mut client = false;
    let mut names = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => {
                server |= eku.server_auth;
                client |= eku.client_auth;
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                names.extend(san.general_names.iter().map(|n| n.to_string()));
            }
            _ => {}
        }
    }
    let usage = match (server, client) {
        (true, true) => "server and client",
        (true, false) => "server",
        (false, true) => "client",
        (false, false) => "none (no extended key usage)",
    };
    let digest = sha2::Sha256::digest(&pem.contents);
    let fingerprint = digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    let signed_by_lab = match lab_ca {
        Some(ca) => {
            let ca_text = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let (_, ca_pem) =
                x509_parser::pem::parse_x509_pem(&ca_text).map_err(|e| anyhow::anyhow!("the lab's CA: {e}"))?;
            let ca_cert = ca_pem.parse_x509().map_err(|e| anyhow::anyhow!("the lab's CA: {e}"))?;
            Some(cert.verify_signature(Some(ca_cert.public_key())).is_ok())
        }
        None => None,
    };
    let validity = cert.validity();
    Ok(CertInfo {
        file: path.display().to_string(),
        common_name,
        organization,
        issuer: cert.issuer().to_string(),
        usage: usage.to_string(),
        not_before: validity.not_before.to_rfc2822().unwrap_or_default(),
        not_after: validity.not_after.to_rfc2822().unwrap_or_default(),
        expired: !validity.is_valid(),
        names,
        fingerprint,
        signed_by_lab,
    })
}

impl CertInfo {
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.file);
        let subject: Vec<String> = [
            (!self.common_name.is_empty()).then(|| format!("CN={}", self.common_name)),
            self.organization.as_ref().map(|o| format!("O={o}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.push_str(&format!("  subject      {}\n", subject.join(", ")));
        out.push_str(&format!("  issuer       {}\n", self.issuer));
        out.push_str(&format!("  usage        {}\n", self.usage));
        out.push_str(&format!("  valid        {} to {}", self.not_before, self.not_after));
        out.push_str(if self.expired { "  (EXPIRED or not yet valid: members refuse it)\n" } else { "\n" });
        if !self.names.is_empty() {
            out.push_str(&format!("  names        {}\n", self.names.join(", ")));
        }
        out.push_str(&format!("  sha256       {}\n", self.fingerprint));
        match self.signed_by_lab {
            Some(true) => out.push_str("  signed by    this lab's CA: members accept it\n"),
            Some(false) => out.push_str("  signed by    another CA: this lab's members refuse it\n"),
            None => {}
        }
        if self.usage == "server" {
            out.push_str("  as a client  refused: it is not for client authentication (key usage)\n");
        } else if self.common_name.is_empty() {
            out.push_str("  acts as      no one: requests need a token (so the gateway takes it while auth is on)\n");
        } else if self.organization.is_none() && self.usage == "client" {
            out.push_str(&format!("  acts as      etcd user {:?} when a request carries no token\n", self.common_name));
        }
        out
    }
}

/// `raftty cert list`: one row per certificate, columns as wide as their widest value.
pub fn table(infos: &[CertInfo], lab_ca: &Path) -> String {
    let pki_dir = lab_ca.parent().unwrap_or(Path::new(""));
    let rows: Vec<[String; 6]> = infos
        .iter()
        .map(|i| {
            let file = Path::new(&i.file);
            let cn = if file == lab_ca { "(the lab's CA)".to_string() } else { i.common_name.clone() };
            [
                file.strip_prefix(pki_dir).unwrap_or(file).display().to_string(),
                cn,
                i.usage.clone(),
                if i.expired { "yes" } else { "no" }.to_string(),
                i.not_after.clone(),
                format!("{}…", i.fingerprint.chars().take(23).collect::<String>()),
            ]
        })
        .collect();
    let header = ["FILE", "CN", "USAGE", "EXPIRED", "VALID UNTIL", "SHA-256"].map(str::to_string);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_user_certificate_reads_back_as_issued() {
        let home = tempfile::tempdir().unwrap();
        let lab = Lab::create(home.path(), "t", 1, crate::lab::Tempo::ETCD, Default::default()).unwrap();
        let options = |valid_for: u64, expired: bool, shape: UserShape| IssueOptions {
            valid_for: Duration::from_secs(valid_for),
            expired,
            shape,
        };
        let files = issue(&lab, "carol", options(3600, false, UserShape::Client)).unwrap();
        assert!(files.cert.starts_with(lab.pki_dir().join("users")));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&files.key).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "private keys are written 0600");
        let info = inspect(&files.cert, Some(&files.ca)).unwrap();
        assert_eq!(info.common_name, "carol");
        assert_eq!(info.usage, "client");
        assert!(!info.expired);
        assert_eq!(info.signed_by_lab, Some(true));
        assert_eq!(info.fingerprint.len(), 32 * 3 - 1);
        assert!(info.render().contains("acts as      etcd user \"carol\""), "{}", info.render());
        let old = issue(&lab, "dave", options(3600, true, UserShape::Client)).unwrap();
        assert!(inspect(&old.cert, None).unwrap().expired);
        assert!(issue(&lab, "bad name", options(1, false, UserShape::Client)).is_err());

        let server =
            inspect(&issue(&lab, "erin", options(3600, false, UserShape::ServerOnly)).unwrap().cert, None).unwrap();
        assert_eq!((server.common_name.as_str(), server.usage.as_str()), ("erin", "server"));
        assert!(server.render().contains("not for client authentication"), "{}", server.render());
        let anonymous =
            inspect(&issue(&lab, "curl", options(3600, false, UserShape::WithoutCommonName)).unwrap().cert, None)
                .unwrap();
        assert_eq!((anonymous.common_name.as_str(), anonymous.organization.as_deref()), ("", Some("curl")));
        assert!(anonymous.render().contains("subject      O=curl\n"), "{}", anonymous.render());
        assert!(anonymous.render().contains("requests need a token"), "{}", anonymous.render());

        let ca = lab.pki_dir().join("ca.crt");
        let listed = table(&[inspect(&ca, None).unwrap(), info], &ca);
        let lines: Vec<&str> = listed.lines().collect();
        assert!(
            lines[0].starts_with("FILE ") && lines[1].starts_with("ca.crt ") && lines[1].contains("(the lab's CA)")
        );
        assert!(lines[2].starts_with("users/carol.crt  carol "), "{listed}");
        let usage_column = lines[0].find("USAGE").unwrap();
        assert_eq!(lines[2].find("client"), Some(usage_column), "columns line up:\n{listed}");
    }
}
