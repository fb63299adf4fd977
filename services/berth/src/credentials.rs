//! The key pairs the gateway accepts.
//!
//! `BERTH_ACCESS_KEY_ID`/`BERTH_SECRET_ACCESS_KEY` from the environment, plus any in
//! a credentials file (AWS shared-credentials format). When neither gives a key,
//! `berth up` makes one and keeps it in `<data-dir>/credentials`, so a laptop
//! install has stable credentials without any set-up.

use std::path::Path;

use anyhow::Context;
use berth_aws_protocol::sigv4::KeyStore;
use rand::Rng;

/// The key pair `berth up` tells the user to use.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Builds the key store; returns it with the pair to show the user.
pub fn load_key_store(
    credentials_file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<(KeyStore, Credentials)> {
    let generated = data_dir.join("credentials");
    let mut keys =
        KeyStore::from_env().context("reading BERTH_ACCESS_KEY_ID / BERTH_SECRET_ACCESS_KEY")?;
    if let Some(file) = credentials_file {
        keys.load_credentials_file(file)
            .with_context(|| format!("reading credentials file {}", file.display()))?;
    }
    if keys.is_empty() {
        if !generated.exists() {
            let pair = Credentials {
                access_key_id: format!(
                    "BERTH{}",
                    random_chars(15, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                ),
                secret_access_key: random_chars(
                    40,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                ),
            };
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(
                &generated,
                format!(
                    "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                    pair.access_key_id, pair.secret_access_key
                ),
            )?;
        }
        keys.load_credentials_file(&generated)
            .with_context(|| format!("reading {}", generated.display()))?;
    }
    let access_key_id = keys
        .access_key_ids()
        .next()
        .context("no credentials configured")?
        .to_owned();
    let secret_access_key = keys.secret(&access_key_id).unwrap_or_default().to_owned();
    Ok((
        keys,
        Credentials {
            access_key_id,
            secret_access_key,
        },
    ))
}

fn random_chars(length: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// The agents' registration token: `BERTH_AGENT_TOKEN`, else one made once and kept in
/// `<data-dir>/agent-token`.
pub fn load_agent_token(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("BERTH_AGENT_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    let path = data_dir.join("agent-token");
    if let Ok(token) = std::fs::read_to_string(&path)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let token = random_chars(32, b"abcdefghijklmnopqrstuvwxyz0123456789");
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}
