//! What `tm` remembers between runs: the server, a token and a project, in
//! `<config dir>/taskmaster/tm.json` (`TM_CONFIG_DIR` overrides the
//! directory), readable by the user only.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Settings {
    pub url: Option<String>,
    pub token: Option<String>,
    pub project: Option<String>,
}

fn path() -> anyhow::Result<PathBuf> {
    let directory = match std::env::var_os("TM_CONFIG_DIR") {
        Some(directory) => PathBuf::from(directory),
        None => dirs::config_dir()
            .ok_or_else(|| anyhow!("no configuration directory: set TM_CONFIG_DIR"))?
            .join("taskmaster"),
    };
    Ok(directory.join("tm.json"))
}

impl Settings {
    /// The remembered settings; none before the first `login`.
    pub fn load() -> anyhow::Result<Settings> {
        let path = path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not tm's configuration", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the settings where only the user can read them (they hold a
    /// token), replacing the file in one step.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = path()?;
        let directory = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let temporary = path.with_extension("json.new");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
