//! The access keys Berth accepts, and where they come from.
//!
//! Why: SigV4 is a shared-secret scheme, so the gateway needs each client's secret to recompute
//! the signature. Keys come from the environment (`BERTH_ACCESS_KEY_ID` and
//! `BERTH_SECRET_ACCESS_KEY`, one pair) and from a file in the AWS shared-credentials format, so
//! an operator can hand users the same `~/.aws/credentials` profile they point their clients at.

use std::fmt;
use std::path::{Path, PathBuf};

use foldhash::HashMap;

/// Environment variable holding the access key id of the one key given through the environment.
pub const ENV_ACCESS_KEY_ID: &str = "BERTH_ACCESS_KEY_ID";
/// Environment variable holding the secret of that key.
pub const ENV_SECRET_ACCESS_KEY: &str = "BERTH_SECRET_ACCESS_KEY";
/// Environment variable naming a credentials file (AWS shared-credentials INI format).
pub const ENV_CREDENTIALS_FILE: &str = "BERTH_CREDENTIALS_FILE";

/// Why a key store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Only one of the two environment variables is set.
    #[error("{set} is set but {unset} is not: set both or neither")]
    IncompleteEnv {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        unset: &'static str,
    },
    /// The credentials file could not be read.
    #[error("cannot read credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the credentials file is not INI.
    #[error("{origin}:{line}: {problem}")]
    Syntax {
        /// The file (or other origin) of the text.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A profile has one of `aws_access_key_id` / `aws_secret_access_key` without the other.
    #[error("{origin}: profile [{profile}] has {present} but no {missing}")]
    IncompleteProfile {
        /// The file (or other origin) of the text.
        origin: String,
        /// The profile.
        profile: String,
        /// The key that is there.
        present: &'static str,
        /// The key that is missing.
        missing: &'static str,
    },
    /// The same access key id appears twice with different secrets.
    #[error("access key id {0} is given twice with different secrets")]
    Conflict(String),
}

#[derive(Clone, PartialEq, Eq)]
struct StoredKey {
    secret: String,
    session_token: Option<String>,
}

/// Access key id → secret (and optionally the session token that must accompany it).
///
/// `Debug` shows the access key ids only, never a secret.
#[derive(Clone, Default)]
pub struct KeyStore {
    keys: HashMap<String, StoredKey>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.access_key_ids().collect();
        ids.sort_unstable();
        f.debug_struct("KeyStore")
            .field("access_key_ids", &ids)
            .finish()
    }
}

impl KeyStore {
    /// An empty store: every signed request is rejected with `UnrecognizedClientException`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, access_key_id: impl Into<String>, secret: impl Into<String>) {
        self.keys.insert(
            access_key_id.into(),
            StoredKey {
                secret: secret.into(),
                session_token: None,
            },
        );
    }

    /// Adds (or replaces) a key whose requests must carry this `X-Amz-Security-Token`.
    ///
    /// A key stored without a token accepts requests with any token or none.
    pub fn insert_with_session_token(
        &mut self,
        access_key_id: impl Into<String>,
        secret: impl Into<String>,
        session_token: impl Into<String>,
    ) {
        self.keys.insert(
            access_key_id.into(),
            StoredKey {
                secret: secret.into(),
                session_token: Some(session_token.into()),
            },
        );
    }

    /// Builder form of [`KeyStore::insert`].
    pub fn with_key(mut self, access_key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.insert(access_key_id, secret);
        self
    }

    /// The secret of an access key id.
    pub fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(|key| key.secret.as_str())
    }

    /// The session token a key requires, if it requires one.
    pub fn required_session_token(&self, access_key_id: &str) -> Option<&str> {
        self.keys
            .get(access_key_id)
            .and_then(|key| key.session_token.as_deref())
    }

    /// Whether the store knows this access key id.
    pub fn contains(&self, access_key_id: &str) -> bool {
        self.keys.contains_key(access_key_id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store has no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The access key ids, in no particular order.
    pub fn access_key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Reads `BERTH_ACCESS_KEY_ID` / `BERTH_SECRET_ACCESS_KEY` and, when `BERTH_CREDENTIALS_FILE`
    /// is set, that file. Empty variables count as unset. The store may come out empty: the
    /// caller decides whether that is an error.
    pub fn from_env() -> Result<Self, KeyStoreError> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let file = var(ENV_CREDENTIALS_FILE).map(PathBuf::from);
        Self::from_sources(
            var(ENV_ACCESS_KEY_ID).as_deref(),
            var(ENV_SECRET_ACCESS_KEY).as_deref(),
            file.as_deref(),
        )
    }

    /// [`KeyStore::from_env`] with the values given: an access key id and secret pair (both or
    /// neither) and an optional credentials file.
    pub fn from_sources(
        access_key_id: Option<&str>,
        secret_access_key: Option<&str>,
        credentials_file: Option<&Path>,
    ) -> Result<Self, KeyStoreError> {
        let mut store = KeyStore::new();
        match (access_key_id, secret_access_key) {
            (Some(id), Some(secret)) => store.add(id, secret, None)?,
            (Some(_), None) => {
                return Err(KeyStoreError::IncompleteEnv {
                    set: ENV_ACCESS_KEY_ID,
                    unset: ENV_SECRET_ACCESS_KEY,
                });
            }
            (None, Some(_)) => {
                return Err(KeyStoreError::IncompleteEnv {
                    set: ENV_SECRET_ACCESS_KEY,
                    unset: ENV_ACCESS_KEY_ID,
                });
            }
            (None, None) => {}
        }
        if let Some(path) = credentials_file {
            store.load_credentials_file(path)?;
        }
        Ok(store)
    }

    /// Adds every profile's key from a shared-credentials file; returns how many keys it held.
    pub fn load_credentials_file(&mut self, path: &Path) -> Result<usize, KeyStoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyStoreError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.add_credentials_ini(&text, &path.display().to_string())
    }

    /// Adds every profile's key from text in the AWS shared-credentials INI format:
    /// `[profile]` sections with `aws_access_key_id`, `aws_secret_access_key` and optionally
    /// `aws_session_token`. Sections without keys (other settings) are skipped; `origin` names
    /// the text in errors. Returns how many keys the text held.
    pub fn add_credentials_ini(
        &mut self,
        text: &str,
        origin: &str,
    ) -> Result<usize, KeyStoreError> {
        let profiles = parse_ini(text, origin)?;
        let mut added = 0;
        for profile in profiles {
            match (profile.access_key_id, profile.secret_access_key) {
                (Some(id), Some(secret)) => {
                    self.add(&id, &secret, profile.session_token)?;
                    added += 1;
                }
                (Some(_), None) => {
                    return Err(KeyStoreError::IncompleteProfile {
                        origin: origin.to_owned(),
                        profile: profile.name,
                        present: "aws_access_key_id",
                        missing: "aws_secret_access_key",
                    });
                }
                (None, Some(_)) => {
                    return Err(KeyStoreError::IncompleteProfile {
                        origin: origin.to_owned(),
                        profile: profile.name,
                        present: "aws_secret_access_key",
                        missing: "aws_access_key_id",
                    });
                }
                (None, None) => {}
            }
        }
        Ok(added)
    }

    fn add(
        &mut self,
        access_key_id: &str,
        secret: &str,
        session_token: Option<String>,
    ) -> Result<(), KeyStoreError> {
        let key = StoredKey {
            secret: secret.to_owned(),
            session_token,
        };
        if let Some(existing) = self.keys.get(access_key_id)
            && existing.secret != key.secret
        {
            return Err(KeyStoreError::Conflict(access_key_id.to_owned()));
        }
        self.keys.insert(access_key_id.to_owned(), key);
        Ok(())
    }
}

struct IniProfile {
    name: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

/// A small reader of the configparser dialect botocore uses: `#`/`;` comments, `key = value`
/// or `key: value`, case-insensitive keys, indented continuation lines (ignored here).
fn parse_ini(text: &str, origin: &str) -> Result<Vec<IniProfile>, KeyStoreError> {
    let syntax = |line: usize, problem: String| KeyStoreError::Syntax {
        origin: origin.to_owned(),
        line,
        problem,
    };
    let mut profiles: Vec<IniProfile> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw_line.starts_with([' ', '\t']) {
            // A continuation of the previous value (nested settings such as `s3 =`).
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(syntax(
                    line_number,
                    format!("unclosed section header {line:?}"),
                ));
            };
            let name = name.trim();
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            profiles.push(IniProfile {
                name: name.to_owned(),
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
            });
            continue;
        }
        let Some(separator) = line.find(['=', ':']) else {
            return Err(syntax(
                line_number,
                "expected `key = value` or a `[profile]` header".to_owned(),
            ));
        };
        let key = line[..separator].trim().to_ascii_lowercase();
        let value = line[separator + 1..].trim().to_owned();
        let Some(profile) = profiles.last_mut() else {
            return Err(syntax(
                line_number,
                "a setting before any `[profile]` header".to_owned(),
            ));
        };
        let value = Some(value).filter(|value| !value.is_empty());
        match key.as_str() {
            "aws_access_key_id" => profile.access_key_id = value,
            "aws_secret_access_key" => profile.secret_access_key = value,
            "aws_session_token" => profile.session_token = value,
            _ => {}
        }
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_profiles_of_a_credentials_file() {
        let text = "\
# a comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/default+1

; another comment
[profile ops]
AWS_ACCESS_KEY_ID: AKIDOPS
aws_secret_access_key:   opssecret
aws_session_token = TOKEN
region = eu-west-1
s3 =
    max_concurrent_requests = 20

[settings-only]
region = us-east-1
";
        let mut store = KeyStore::new();
        let added = store
            .add_credentials_ini(text, "test")
            .expect("valid credentials");
        assert_eq!(added, 2);
        assert_eq!(store.secret("AKIDDEFAULT"), Some("secret/default+1"));
        assert_eq!(store.secret("AKIDOPS"), Some("opssecret"));
        assert_eq!(store.required_session_token("AKIDOPS"), Some("TOKEN"));
        assert_eq!(store.required_session_token("AKIDDEFAULT"), None);
        assert_eq!(store.secret("nope"), None);
    }

    #[test]
    fn rejects_incomplete_profiles_and_bad_lines() {
        let mut store = KeyStore::new();
        let error = store
            .add_credentials_ini("[a]\naws_access_key_id = X\n", "f")
            .expect_err("incomplete profile");
        assert!(
            matches!(error, KeyStoreError::IncompleteProfile { .. }),
            "{error}"
        );

        let error = store
            .add_credentials_ini("aws_access_key_id = X\n", "f")
            .expect_err("no section");
        assert!(error.to_string().starts_with("f:1:"), "{error}");

        let error = store
            .add_credentials_ini("[a\n", "f")
            .expect_err("bad header");
        assert!(
            matches!(error, KeyStoreError::Syntax { line: 1, .. }),
            "{error}"
        );

        let error = store
            .add_credentials_ini("[a]\njust words\n", "f")
            .expect_err("bad line");
        assert!(
            matches!(error, KeyStoreError::Syntax { line: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn env_pair_and_file_combine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=filesecret\n",
        )
        .expect("write credentials");
        let store =
            KeyStore::from_sources(Some("AKIDENV"), Some("envsecret"), Some(&path)).expect("store");
        assert_eq!(store.len(), 2);
        assert_eq!(store.secret("AKIDENV"), Some("envsecret"));
        assert_eq!(store.secret("AKIDFILE"), Some("filesecret"));
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn env_needs_both_halves() {
        let error = KeyStore::from_sources(Some("AKID"), None, None).expect_err("half pair");
        assert!(matches!(error, KeyStoreError::IncompleteEnv { .. }));
        let error = KeyStore::from_sources(None, Some("s"), None).expect_err("half pair");
        assert!(matches!(error, KeyStoreError::IncompleteEnv { .. }));
        assert!(
            KeyStore::from_sources(None, None, None)
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn missing_file_and_conflicting_secrets_are_errors() {
        let error = KeyStore::from_sources(None, None, Some(Path::new("/nonexistent/berth/creds")))
            .expect_err("missing file");
        assert!(matches!(error, KeyStoreError::Read { .. }));

        let mut store = KeyStore::new().with_key("AKID", "one");
        let error = store
            .add_credentials_ini(
                "[x]\naws_access_key_id=AKID\naws_secret_access_key=two\n",
                "f",
            )
            .expect_err("conflict");
        assert!(matches!(error, KeyStoreError::Conflict(_)));
    }
}
