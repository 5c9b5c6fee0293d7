//! Message files (`messages/*.toml`) and the text a campaign will actually send.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::encoding::{self, Analysis};

/// A theme message as shipped in `messages/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageFile {
    pub id: String,
    pub title: String,
    /// Sender id / brandname.
    pub sender: Option<String>,
    #[serde(default = "default_language")]
    pub language: String,
    pub text: String,
    /// A hand-written version without diacritics, preferred over automatic folding.
    pub text_no_diacritics: Option<String>,
}

fn default_language() -> String {
    "vi".into()
}

impl MessageFile {
    /// Reads a `.toml` message file, or takes any other file as the plain text itself.
    pub fn load(path: &Path) -> Result<Self> {
        let raw = std::fs::read_to_string(path)
            .with_context(|| format!("Cannot read the message file {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "toml") {
            let m: Self = toml::from_str(&raw).with_context(|| {
                format!(
                    "{} is not a valid message file (see messages/ for the format)",
                    path.display()
                )
            })?;
            if m.text.trim().is_empty() {
                bail!("{}: the message text is empty", path.display());
            }
            return Ok(m);
        }
        let text = raw.trim_end_matches(['\n', '\r']).to_string();
        if text.trim().is_empty() {
            bail!("{} is empty: write the message text in it", path.display());
        }
        let id = path
            .file_stem()
            .map_or_else(|| "message".into(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            title: id.clone(),
            id,
            sender: None,
            language: default_language(),
            text,
            text_no_diacritics: None,
        })
    }

    /// The text as it will be sent, analysed.
    pub fn prepare(&self, no_diacritics: bool) -> Analysis {
        match (no_diacritics, &self.text_no_diacritics) {
            (true, Some(hand_written)) => {
                let mut a = encoding::analyze(hand_written.trim_end_matches('\n'));
                a.folded = true;
                a
            }
            (true, None) => encoding::analyze_folded(self.text.trim_end_matches('\n')),
            (false, _) => encoding::analyze(self.text.trim_end_matches('\n')),
        }
    }
}
