//! `pressluft safe-update-shots --spec <file>`: screenshots of a temporary environment's check
//! pages with the system chromium, and (phase `after`) their comparison with the `before` ones.
//!
//! A safe-update run (docs/decisions.md "Safe updates (issue 16)") runs this on the control
//! plane twice, before and after the updates are applied to a throwaway clone. One headless
//! chromium, driven through the DevTools protocol (`chromiumoxide`, never a downloaded browser),
//! visits the pages one after the other at 1280×800, device scale 1; the preview host is pinned
//! to the node's IP with `--host-resolver-rules`, so no DNS is needed and nothing else is reached
//! under that name. Per page it records the main document's HTTP status and the console errors,
//! stops animations, and writes a full-page PNG (at most [`MAX_HEIGHT`] pixels high) into the run
//! directory, which is created 0700 and never written through a link. The command prints one
//! JSON line; a page that fails is reported in it (exit 0), only a broken spec, a missing
//! chromium or an unusable run directory exit non-zero.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{EventResponseReceived, ResourceType};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, Viewport as Clip,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown, RemoteObject,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::Page;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::compare::{compare, Mask};

/// The distribution's chromium binary (Debian; Ubuntu's deb installs it there too).
pub const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// Viewport width and height in CSS pixels (device scale 1).
pub const WIDTH: u32 = 1280;
pub const VIEWPORT_HEIGHT: u32 = 800;
/// Screenshots stop here: the top of a long page shows what an update broke; the rest would
/// only cost time and disk.
pub const MAX_HEIGHT: u32 = 4000;
/// Home plus up to ten operator-chosen paths.
pub const MAX_PAGES: usize = 11;
const MAX_MASKS_PER_PAGE: usize = 50;
const MAX_PATH_LEN: usize = 512;
/// One page's navigation may take this long (load event included).
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// After the load event: web fonts, late layout.
const SETTLE: Duration = Duration::from_millis(500);
const MAX_CONSOLE_ERRORS: usize = 20;
const MAX_MESSAGE_CHARS: usize = 300;
const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Takes focus off whatever holds it (an autofocus field, a focus ring), so focus does not
/// differ between two shots of the same page.
const BLUR: &str =
    "if (document.activeElement && document.activeElement.blur) document.activeElement.blur();";

/// Stops animations, transitions and the blinking caret so two shots of the same page match.
const FREEZE_CSS: &str = "*,*::before,*::after{animation:none!important;\
transition:none!important;caret-color:transparent!important;scroll-behavior:auto!important;\
outline:none!important}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// Pins `host` to `ip` for the browser (`--host-resolver-rules=MAP host ip`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub host: String,
    pub ip: IpAddr,
}

/// The spec file the run's playbook renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShotsSpec {
    pub phase: Phase,
    pub run_dir: PathBuf,
    pub base_url: String,
    #[serde(default)]
    pub resolve: Option<Resolve>,
    pub pages: Vec<String>,
    #[serde(default)]
    pub masks: BTreeMap<String, Vec<Mask>>,
    #[serde(default = "default_threshold")]
    pub threshold_percent: f64,
    #[serde(default = "default_chromium")]
    pub chromium: PathBuf,
}

fn default_threshold() -> f64 {
    0.5
}

fn default_chromium() -> PathBuf {
    PathBuf::from(DEFAULT_CHROMIUM)
}

/// One page in the printed result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageResult {
    pub path: String,
    /// The main document's HTTP status; `None` when no response came.
    pub status: Option<u16>,
    pub console_errors: Vec<String>,
    /// Phase `after` only.
    pub changed_percent: Option<f64>,
    /// Phase `after`: the visual comparison passed; phase `before`: the page was captured.
    pub passed: bool,
    /// Phase `after` only; `None` when nothing changed.
    pub changed_box: Option<Mask>,
    /// Why the page could not be captured or compared.
    pub error: Option<String>,
}

/// The one JSON line the command prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShotsResult {
    pub pages: Vec<PageResult>,
}

/// What stops the whole command (a page's failure does not).
#[derive(Debug, thiserror::Error)]
pub enum ShotsError {
    #[error("invalid spec: {0}")]
    Spec(String),
    #[error("{0}")]
    Chromium(String),
    #[error("run directory {path}: {message}")]
    RunDir { path: String, message: String },
}

impl ShotsSpec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<ShotsSpec, ShotsError> {
        let file = File::open(path)
            .map_err(|e| ShotsError::Spec(format!("cannot read {}: {e}", path.display())))?;
        let mut text = String::new();
        file.take(MAX_SPEC_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| ShotsError::Spec(format!("cannot read {}: {e}", path.display())))?;
        let spec: ShotsSpec = serde_json::from_str(&text)
            .map_err(|e| ShotsError::Spec(format!("{e}").replace('\n', " ")))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field; returns the base URL parsed.
    pub fn validate(&self) -> Result<url::Url, ShotsError> {
        let bad = |m: String| Err(ShotsError::Spec(m));
        if !self.run_dir.is_absolute() {
            return bad("run_dir must be an absolute path".into());
        }
        if !self.chromium.is_absolute() {
            return bad("chromium must be an absolute path".into());
        }
        if !self.threshold_percent.is_finite() || !(0.0..=100.0).contains(&self.threshold_percent) {
            return bad("threshold_percent must be a number from 0 to 100".into());
        }
        let base = url::Url::parse(&self.base_url)
            .map_err(|e| ShotsError::Spec(format!("base_url: {e}")))?;
        if !matches!(base.scheme(), "http" | "https")
            || !base.username().is_empty()
            || base.password().is_some()
            || base.query().is_some()
            || base.fragment().is_some()
            || base.path() != "/"
        {
            return bad(
                "base_url must be http(s)://<host>[:port]/ without user, path or query".into(),
            );
        }
        let Some(host) = base.host_str() else {
            return bad("base_url has no host".into());
        };
        if let Some(r) = &self.resolve {
            if !valid_host(&r.host) {
                return bad("resolve.host must be a host name (letters, digits, - and .)".into());
            }
            if !r.host.eq_ignore_ascii_case(host) {
                return bad("resolve.host must be base_url's host".into());
            }
        }
        if self.pages.is_empty() || self.pages.len() > MAX_PAGES {
            return bad(format!("pages: 1 to {MAX_PAGES} paths"));
        }
        for p in &self.pages {
            page_url(&base, p).map_err(ShotsError::Spec)?;
        }
        for (p, masks) in &self.masks {
            if !self.pages.contains(p) {
                return bad(format!("masks: {p:?} is not one of the pages"));
            }
            if masks.len() > MAX_MASKS_PER_PAGE {
                return bad(format!("masks: at most {MAX_MASKS_PER_PAGE} per page"));
            }
        }
        Ok(base)
    }
}

/// A host name as DNS writes it: nothing that could add a rule to `--host-resolver-rules`.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `base` + `path`, refusing a path that could leave the host: it must start with `/` and hold
/// no `//`, `\`, whitespace or control character.
pub fn page_url(base: &url::Url, path: &str) -> Result<url::Url, String> {
    if !path.starts_with('/')
        || path.len() > MAX_PATH_LEN
        || path.contains("//")
        || path.contains('\\')
        || path.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "page {:?}: a path must start with / and hold no //, \\, spaces or control characters",
            path.chars().take(80).collect::<String>()
        ));
    }
    let url = base.join(path).map_err(|e| format!("page {path:?}: {e}"))?;
    if url.scheme() != base.scheme() || url.host() != base.host() || url.port() != base.port() {
        return Err(format!("page {path:?} leaves the site's host"));
    }
    Ok(url)
}

/// The CLI entry: load the spec, take the shots, print the result line.
pub async fn run_cli(spec_path: &Path) -> anyhow::Result<()> {
    let spec = ShotsSpec::load(spec_path)?;
    let result = run(&spec).await?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Takes the shots of every page (and compares, phase `after`).
pub async fn run(spec: &ShotsSpec) -> Result<ShotsResult, ShotsError> {
    let base = spec.validate()?;
    check_chromium(&spec.chromium)?;
    prepare_run_dir(&spec.run_dir)?;
    let profile = Profile::create(&spec.run_dir, spec.phase)?;
    let browser = launch(spec, &profile.0).await?;
    let Launched {
        mut browser,
        handler,
    } = browser;

    let mut pages = Vec::with_capacity(spec.pages.len());
    for (i, path) in spec.pages.iter().enumerate() {
        let url = page_url(&base, path).map_err(ShotsError::Spec)?;
        let shot = capture(&browser, &url).await;
        let mut result = PageResult {
            path: path.clone(),
            status: shot.status,
            console_errors: shot.console_errors,
            changed_percent: None,
            passed: false,
            changed_box: None,
            error: shot.error,
        };
        if let Some(png) = shot.png {
            write_private(
                &spec
                    .run_dir
                    .join(format!("{i}-{}.png", spec.phase.as_str())),
                &png,
            )?;
            match spec.phase {
                Phase::Before => result.passed = true,
                Phase::After => {
                    compare_page(spec, i, path, &png, &mut result)?;
                }
            }
        }
        pages.push(result);
    }

    // A browser that does not quit in time is killed (it is also killed when dropped on an
    // early return).
    let closed = tokio::time::timeout(Duration::from_secs(10), browser.close()).await;
    if !matches!(closed, Ok(Ok(_))) {
        let _ = browser.kill().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.wait()).await;
    handler.abort();
    drop(profile);
    Ok(ShotsResult { pages })
}

/// Phase `after`: the page against its `before` shot; the diff image beside them.
fn compare_page(
    spec: &ShotsSpec,
    i: usize,
    path: &str,
    after: &[u8],
    result: &mut PageResult,
) -> Result<(), ShotsError> {
    let before_path = spec.run_dir.join(format!("{i}-before.png"));
    let before = match read_private(&before_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            result.error = Some("no before screenshot of this page".into());
            return Ok(());
        }
        Err(e) => {
            return Err(ShotsError::RunDir {
                path: before_path.display().to_string(),
                message: e.to_string(),
            })
        }
    };
    let masks = spec.masks.get(path).map(Vec::as_slice).unwrap_or(&[]);
    match compare(&before, after, masks, spec.threshold_percent) {
        Ok(c) => {
            write_private(&spec.run_dir.join(format!("{i}-diff.png")), &c.diff_png)?;
            result.changed_percent = Some(c.changed_percent);
            result.passed = c.passed;
            result.changed_box = c.changed_box;
        }
        Err(e) => result.error = Some(format!("comparison failed: {e}")),
    }
    Ok(())
}

fn check_chromium(path: &Path) -> Result<(), ShotsError> {
    let ok = fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ShotsError::Chromium(format!(
            "chromium not found at {}: safe updates need the distribution's chromium \
             (apt-get install chromium) or chromium_path pointing at one",
            path.display()
        )))
    }
}

/// Creates the run directory 0700 when missing; refuses a link or a non-directory.
fn prepare_run_dir(dir: &Path) -> Result<(), ShotsError> {
    let err = |message: String| ShotsError::RunDir {
        path: dir.display().to_string(),
        message,
    };
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(e.to_string()))?,
        Err(e) => return Err(err(e.to_string())),
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(err("not a directory (a link is refused)".into()));
    }
    Ok(())
}

/// Writes a file 0600 in the run directory, never through a link (O_NOFOLLOW) nor into a FIFO.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ShotsError> {
    let err = |message: String| ShotsError::RunDir {
        path: path.display().to_string(),
        message,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| err(format!("cannot write (a link is refused): {e}")))?;
    let meta = f.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    f.set_len(0).map_err(|e| err(e.to_string()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| err(e.to_string()))?;
    f.write_all(bytes).map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Reads a screenshot back, never through a link.
fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = Vec::new();
    f.take(256 << 20).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The throwaway chromium profile under the run directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn create(run_dir: &Path, phase: Phase) -> Result<Profile, ShotsError> {
        let dir = run_dir.join(format!(
            ".chromium-{}-{}",
            phase.as_str(),
            std::process::id()
        ));
        // A leftover of a killed run (or a planted link) goes first; remove_dir_all does not
        // follow a link, it removes the link.
        if fs::symlink_metadata(&dir).is_ok() {
            let _ = fs::remove_dir_all(&dir).or_else(|_| fs::remove_file(&dir));
        }
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ShotsError::RunDir {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Profile(dir))
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Launched {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
}

async fn launch(spec: &ShotsSpec, profile: &Path) -> Result<Launched, ShotsError> {
    let mut config = BrowserConfig::builder()
        .chrome_executable(&spec.chromium)
        .user_data_dir(profile)
        .window_size(WIDTH, VIEWPORT_HEIGHT)
        .viewport(Viewport {
            width: WIDTH,
            height: VIEWPORT_HEIGHT,
            device_scale_factor: Some(1.0),
            emulating_mobile: false,
            is_landscape: false,
            has_touch: false,
        })
        .request_timeout(PAGE_TIMEOUT)
        .launch_timeout(Duration::from_secs(30))
        .arg("disable-gpu")
        .arg("no-first-run")
        .arg("disable-background-networking")
        .arg("disable-component-update")
        .arg("disable-sync")
        .arg("disable-quic")
        .arg("ignore-certificate-errors");
    // The sandbox needs an unprivileged user; as root chromium refuses to start without this.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        config = config.no_sandbox();
    }
    if let Some(r) = &spec.resolve {
        config = config.arg((
            "host-resolver-rules",
            format!("MAP {} {}", r.host, r.ip).as_str(),
        ));
    }
    let config = config.build().map_err(ShotsError::Chromium)?;
    let (browser, mut handler) = Browser::launch(config)
        .await
        .map_err(|e| ShotsError::Chromium(format!("chromium did not start: {e}")))?;
    let handler = tokio::spawn(async move {
        // Errors of single messages do not end the connection; the stream ends when it does.
        while handler.next().await.is_some() {}
    });
    Ok(Launched { browser, handler })
}

/// What one page gave.
struct Shot {
    status: Option<u16>,
    console_errors: Vec<String>,
    png: Option<Vec<u8>>,
    error: Option<String>,
}

async fn capture(browser: &Browser, url: &url::Url) -> Shot {
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let status = Arc::new(Mutex::new(None::<u16>));
    let mut shot = Shot {
        status: None,
        console_errors: Vec::new(),
        png: None,
        error: None,
    };
    let page = match browser.new_page("about:blank").await {
        Ok(p) => p,
        Err(e) => {
            shot.error = Some(cut(&format!("the browser opened no tab: {e}")));
            return shot;
        }
    };
    let mut tasks = Vec::new();
    let outcome = match listen(&page, &errors, &status, &mut tasks).await {
        Ok(()) => tokio::time::timeout(
            PAGE_TIMEOUT + Duration::from_secs(15),
            load_and_shoot(&page, url),
        )
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the page did not load within {} s",
                PAGE_TIMEOUT.as_secs()
            ))
        }),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(png) => shot.png = Some(png),
        Err(e) => shot.error = Some(cut(&e)),
    }
    for t in tasks {
        t.abort();
    }
    let _ = page.close().await;
    shot.status = *status.lock().unwrap();
    shot.console_errors = std::mem::take(&mut *errors.lock().unwrap());
    shot
}

/// Subscribes to the main document's response and the three kinds of console error.
async fn listen(
    page: &Page,
    errors: &Arc<Mutex<Vec<String>>>,
    status: &Arc<Mutex<Option<u16>>>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), String> {
    let fail = |e: chromiumoxide::error::CdpError| format!("the browser refused a listener: {e}");
    let main_frame = page.mainframe().await.map_err(fail)?;

    let mut responses = page
        .event_listener::<EventResponseReceived>()
        .await
        .map_err(fail)?;
    let st = status.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(ev) = responses.next().await {
            let main = ev.frame_id.is_some() && ev.frame_id == main_frame;
            if ev.r#type == ResourceType::Document && main {
                *st.lock().unwrap() = u16::try_from(ev.response.status).ok();
            }
        }
    }));

    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .map_err(fail)?;
    let errs = errors.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(ev) = console.next().await {
            if ev.r#type == ConsoleApiCalledType::Error {
                let text = ev
                    .args
                    .iter()
                    .map(remote_text)
                    .collect::<Vec<_>>()
                    .join(" ");
                push_error(&errs, &text);
            }
        }
    }));

    let mut exceptions = page
        .event_listener::<EventExceptionThrown>()
        .await
        .map_err(fail)?;
    let errs = errors.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(ev) = exceptions.next().await {
            let d = &ev.exception_details;
            let text = d
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_else(|| d.text.clone());
            push_error(&errs, &text);
        }
    }));

    let mut log = page
        .event_listener::<EventEntryAdded>()
        .await
        .map_err(fail)?;
    let errs = errors.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(ev) = log.next().await {
            if ev.entry.level == LogEntryLevel::Error {
                push_error(&errs, &ev.entry.text);
            }
        }
    }));
    Ok(())
}

fn remote_text(o: &RemoteObject) -> String {
    match &o.value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => o.description.clone().unwrap_or_default(),
    }
}

fn push_error(errors: &Mutex<Vec<String>>, text: &str) {
    let mut errors = errors.lock().unwrap();
    if errors.len() < MAX_CONSOLE_ERRORS {
        errors.push(cut(text));
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters, on one line.
fn cut(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

async fn load_and_shoot(page: &Page, url: &url::Url) -> Result<Vec<u8>, String> {
    page.goto(url.as_str())
        .await
        .map_err(|e| format!("the page did not load: {e}"))?;
    let freeze = format!(
        "(async () => {{ const s = document.createElement('style'); s.textContent = {css}; \
         (document.head || document.documentElement).appendChild(s); \
         if (document.fonts && document.fonts.ready) {{ await document.fonts.ready; }} \
         await Promise.race([new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))), \
         new Promise(r => setTimeout(r, 200))]); \
         {BLUR} window.scrollTo(0, 0); return true; }})()",
        css = serde_json::to_string(FREEZE_CSS).expect("a string serialises")
    );
    let params = EvaluateParams::builder()
        .expression(freeze)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .map_err(|e| format!("the page could not be prepared: {e}"))?;
    page.evaluate_expression(params)
        .await
        .map_err(|e| format!("the page could not be prepared: {e}"))?;
    tokio::time::sleep(SETTLE).await;
    // Autofocus may land after the first blur under load (it waits for a rendering step).
    page.evaluate_expression(BLUR)
        .await
        .map_err(|e| format!("the page could not be prepared: {e}"))?;
    let metrics = page
        .layout_metrics()
        .await
        .map_err(|e| format!("the page size is unknown: {e}"))?;
    let height = metrics
        .css_content_size
        .height
        .ceil()
        .clamp(1.0, MAX_HEIGHT as f64);
    let params = CaptureScreenshotParams {
        format: Some(CaptureScreenshotFormat::Png),
        clip: Some(Clip {
            x: 0.0,
            y: 0.0,
            width: WIDTH as f64,
            height,
            scale: 1.0,
        }),
        from_surface: Some(true),
        capture_beyond_viewport: Some(true),
        ..Default::default()
    };
    page.screenshot(params)
        .await
        .map_err(|e| format!("the screenshot failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ShotsSpec {
        serde_json::from_str(
            r#"{"phase":"before","run_dir":"/tmp/x","base_url":"https://abc.example.test/",
                "resolve":{"host":"abc.example.test","ip":"192.0.2.10"},"pages":["/","/about/"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_plain_spec_is_accepted_with_defaults() {
        let s = spec();
        s.validate().unwrap();
        assert_eq!(s.threshold_percent, 0.5);
        assert_eq!(s.chromium, PathBuf::from(DEFAULT_CHROMIUM));
    }

    #[test]
    fn paths_that_leave_the_host_are_refused() {
        let base = url::Url::parse("https://abc.example.test/").unwrap();
        for p in [
            "",
            "about/",
            "//evil.example/",
            "/\\evil.example/",
            "/a b/",
            "/a\nb",
            "/a\u{0}b",
            "https://evil.example/",
            "/a//b",
        ] {
            assert!(page_url(&base, p).is_err(), "{p:?} accepted");
        }
        let u = page_url(&base, "/../../etc/?x=1").unwrap();
        assert_eq!(u.host_str(), Some("abc.example.test"));
        assert_eq!(page_url(&base, "/über/").unwrap().path(), "/%C3%BCber/");
    }

    #[test]
    fn a_resolver_rule_cannot_be_smuggled_in() {
        for host in [
            "abc.example.test, MAP * 192.0.2.1",
            "a b",
            "",
            "-a.test",
            "a..b",
        ] {
            let mut s = spec();
            s.resolve.as_mut().unwrap().host = host.into();
            assert!(s.validate().is_err(), "{host:?} accepted");
        }
        let mut s = spec();
        s.resolve.as_mut().unwrap().host = "other.example.test".into();
        assert!(s.validate().is_err(), "a host other than base_url's");
    }

    #[test]
    fn odd_specs_are_refused() {
        type Change = fn(&mut ShotsSpec);
        let cases: [(&str, Change); 8] = [
            ("relative run_dir", |s| s.run_dir = "x".into()),
            ("ftp", |s| s.base_url = "ftp://abc.example.test/".into()),
            ("path", |s| {
                s.base_url = "https://abc.example.test/x/".into()
            }),
            ("user", |s| {
                s.base_url = "https://u:p@abc.example.test/".into()
            }),
            ("threshold", |s| s.threshold_percent = 101.0),
            ("no pages", |s| s.pages.clear()),
            ("many pages", |s| {
                s.pages = (0..12).map(|i| format!("/{i}/")).collect()
            }),
            ("mask of no page", |s| {
                s.masks.insert("/x/".into(), vec![]);
            }),
        ];
        for (what, f) in cases {
            let mut s = spec();
            f(&mut s);
            assert!(s.validate().is_err(), "{what} accepted");
        }
        let unknown = r#"{"phase":"before","run_dir":"/tmp/x","base_url":"https://a.test/",
            "pages":["/"],"extra":1}"#;
        assert!(serde_json::from_str::<ShotsSpec>(unknown).is_err());
    }

    #[test]
    fn messages_are_cut_to_one_short_line() {
        let long = "x".repeat(1000);
        assert_eq!(cut(&long).chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(cut("a\nb"), "a b");
    }
}
