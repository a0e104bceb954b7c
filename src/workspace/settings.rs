//! What is remembered between runs besides the recent folders (eframe itself keeps the
//! window's size and place, panel widths and which sections are open). Plain data, so the
//! workspace and its tests need no window.

/// The interface language. Lives here, not in the UI, because it is a remembered setting;
/// the UI's `i18n` module does the translating.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// The desktop's language on a first run (nothing remembered yet): Chinese for zh_* locales.
    pub fn from_env() -> Self {
        let locale =
            ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        match locale {
            Some(l) if l.starts_with("zh") => Lang::Zh,
            _ => Lang::En,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Lang::En),
            "zh" | "cn" | "zh-cn" | "zh_cn" | "chinese" | "中文" => Some(Lang::Zh),
            _ => None,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HistogramSettings {
    pub bins: usize,
    pub log_y: bool,
}

impl Default for HistogramSettings {
    fn default() -> Self {
        Self { bins: 64, log_y: false }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Everything 1.6× larger, for a projector (F11).
    pub presenter: bool,
    pub dark: bool,
    /// Pure black/white backgrounds and bolder lines, for washed-out projectors.
    pub high_contrast: bool,
    pub lang: Lang,
    pub sampling: crate::sampling::SamplingParams,
    /// The id of the panel filling the centre ("weights", "tokens", "routing", …). A string
    /// rather than an enum so a new panel needs no change here; older versions wrote the
    /// capitalised names, which [`Settings::view_id`] still understands.
    pub view: String,
    pub histogram: HistogramSettings,
    /// The tree panel shows state_dict keys instead of modules.
    pub flat_tree: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            presenter: false,
            dark: true,
            high_contrast: false,
            lang: Lang::En,
            sampling: crate::sampling::SamplingParams::default(),
            view: "weights".into(),
            histogram: HistogramSettings::default(),
            flat_tree: false,
        }
    }
}

impl Settings {
    /// What decides how the window looks; zoom and theme are re-applied only when it changes,
    /// so a Ctrl +/− zoom survives everything else.
    pub fn appearance(&self) -> (bool, bool, bool) {
        (self.presenter, self.dark, self.high_contrast)
    }

    /// The centre panel's id, lower-case whatever version wrote it.
    pub fn view_id(&self) -> String {
        self.view.to_ascii_lowercase()
    }
}
