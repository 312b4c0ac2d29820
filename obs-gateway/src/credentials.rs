//! The credentials file: access keys, their secret keys and the tenant (domain) each belongs to.
//!
//! The file is TOML, written by hand by users and test scripts:
//!
//! ```toml
//! [[credentials]]
//! access_key = "AK1EXAMPLE"
//! secret_key = "sk-one"
//! domain_id = "783fc6652cf246c096ea836694f71855"
//! # kms_token = "..."   # only when the daemon runs with --tenants
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use kms_proto::key_id::DomainId;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Why the credentials file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file cannot be read or written.
    #[error("credentials file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not the documented TOML shape.
    #[error("credentials file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// One access key's entry.
#[derive(Clone)]
pub struct Credential {
    /// The access key (public).
    pub access_key: String,
    /// The secret key: wiped on drop, never printed.
    pub secret_key: Zeroizing<String>,
    /// The tenant the key acts for.
    pub domain: DomainId,
    /// The bearer token for the daemon, when it runs with `--tenants`.
    pub kms_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    credentials: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    access_key: String,
    secret_key: String,
    domain_id: String,
    kms_token: Option<String>,
}

/// The access keys the gateway accepts, by access key.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_access_key: HashMap<String, Credential>,
}

impl Credentials {
    /// Parses the TOML text of a credentials file (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, CredentialsError> {
        let invalid = |message: String| CredentialsError::Invalid {
            path: path.to_owned(),
            message,
        };
        let shape: FileShape = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if shape.credentials.is_empty() {
            return Err(invalid("no [[credentials]] entry".into()));
        }
        let mut by_access_key = HashMap::new();
        for e in shape.credentials {
            if e.access_key.is_empty() || e.secret_key.is_empty() {
                return Err(invalid(
                    "an entry has an empty access_key or secret_key".into(),
                ));
            }
            if !e
                .access_key
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':')
            {
                return Err(invalid(format!(
                    "access_key {:?} must be printable ASCII without ':'",
                    e.access_key
                )));
            }
            let domain = DomainId::parse(&e.domain_id)
                .map_err(|err| invalid(format!("domain_id {:?}: {err}", e.domain_id)))?;
            let cred = Credential {
                access_key: e.access_key.clone(),
                secret_key: Zeroizing::new(e.secret_key),
                domain,
                kms_token: e.kms_token.map(Zeroizing::new),
            };
            if by_access_key.insert(e.access_key.clone(), cred).is_some() {
                return Err(invalid(format!(
                    "access_key {:?} is listed twice",
                    e.access_key
                )));
            }
        }
        Ok(Self { by_access_key })
    }

    /// Reads and parses a credentials file.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads `path`, or (when it does not exist) creates it, mode 0600, with one random pair for a
    /// random default tenant. Returns the credentials and, when it created the file, the new
    /// access key.
    pub fn load_or_create(path: &Path) -> Result<(Self, Option<String>), CredentialsError> {
        if path.exists() {
            return Ok((Self::load(path)?, None));
        }
        let io = |source| CredentialsError::Io {
            path: path.display().to_string(),
            source,
        };
        let access_key = format!("AK{}", random_hex(9).to_uppercase());
        let secret = Zeroizing::new(random_hex(20));
        let domain = random_hex(16);
        let text = Zeroizing::new(format!(
            "# Created by obs-gateway on first start: the default tenant's access key.\n[[credentials]]\naccess_key = \"{access_key}\"\nsecret_key = \"{}\"\ndomain_id = \"{domain}\"\n",
            secret.as_str()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok((
            Self::parse(&text, &path.display().to_string())?,
            Some(access_key),
        ))
    }

    /// The entry of `access_key`.
    pub fn get(&self, access_key: &str) -> Option<&Credential> {
        self.by_access_key.get(access_key)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Credential> {
        self.by_access_key.values()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // The OS random source does not fail on the platforms the gateway runs on; a zero key
    // would be refused below by nobody, so fail loudly instead.
    getrandom::fill(&mut b).expect("the operating system's random source works");
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_shape_parses_and_unknown_fields_are_refused() {
        let ok = "[[credentials]]\naccess_key = \"AK1EXAMPLE\"\nsecret_key = \"sk-one\"\ndomain_id = \"783fc6652cf246c096ea836694f71855\"\n# kms_token = \"x\"\n";
        let c = Credentials::parse(ok, "f").unwrap();
        let e = c.get("AK1EXAMPLE").unwrap();
        assert_eq!(e.secret_key.as_str(), "sk-one");
        assert_eq!(e.domain.as_str(), "783fc6652cf246c096ea836694f71855");
        assert!(!format!("{e:?}").contains("sk-one"));
        for bad in [
            "",
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"s\"\ndomain_id = \"783fc6652cf246c096ea836694f71855\"\nextra = 1\n",
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"\"\ndomain_id = \"783fc6652cf246c096ea836694f71855\"\n",
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"s\"\ndomain_id = \"not a domain\"\n",
        ] {
            assert!(Credentials::parse(bad, "f").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_created_file_is_private_and_loads_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        let (c, ak) = Credentials::load_or_create(&path).unwrap();
        let ak = ak.unwrap();
        assert!(c.get(&ak).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = Credentials::load_or_create(&path).unwrap();
        assert!(created.is_none());
        assert!(again.get(&ak).is_some());
    }
}
