//! `CreateImageModerationAsyncTask` and the workers behind it.
//!
//! The call is checked like `ImageModeration` plus its `CallbackUrl`, stored (answered only once
//! stored), then moderated by one of `tasks.workers` workers. The result goes to the callback as
//! `POST` of the same JSON envelope a synchronous call answers, signed (see [`signature`]), and
//! is retried with exponential backoff until a 2xx or `tasks.delivery_deadline_secs`.

use crate::actions::{self, parse, Context};
use crate::answer;
use crate::envelope;
use crate::error::{CallbackUrlError, ErrorCode, ImageError, OrApiError, Source};
use crate::moderation::{self, moderate, Admission, Input};
use crate::AppState;
use engine::history::Origin;
use engine::task::{next_attempt, Task, TaskState};
use hmac::{Hmac, Mac};
use protocol::schema::Version;
use protocol::wire::ImageModerationRequest;
use protocol::{ApiError, Code, Lang};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::Duration;

/// The most frames an asynchronous task moderates (`MaxFrames` above is refused).
pub const MAX_ASYNC_FRAMES: i64 = 5;
/// Header with the signature of a callback: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Ims-Signature";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CallbackInput {
    callback_url: String,
}

/// `hex(HMAC-SHA256(secret_key, "<timestamp>.<body>"))`: what a receiver recomputes with the
/// SecretKey of the key that created the task (named in `X-Ims-SecretId`).
pub fn signature(secret_key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub async fn create(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    // The definitions give these to the cloud's moderation agent only (several URLs, or text,
    // answered under one DataId); refused rather than dropped.
    for agent_only in ["FileUrlList", "TextContent"] {
        if params.get(agent_only).is_some() {
            return Err(ApiError::with_message(
                Code::UnsupportedOperation,
                format!("{agent_only} is for the cloud's moderation agent only; send one image per task with FileContent or FileUrl."),
                format!("{agent_only} 仅供云端审核智能体使用；请每个任务用 FileContent 或 FileUrl 提交一张图片。"),
            ));
        }
    }
    let CallbackInput { callback_url } = parse(params.clone())?;
    let request: ImageModerationRequest = parse(params.clone())?;
    moderation::check(&request)?;
    if request.max_frames.is_some_and(|n| n > MAX_ASYNC_FRAMES) {
        return Err(ApiError::with_message(
            Code::InvalidParameterValueInvalidParameter,
            format!("MaxFrames is at most {MAX_ASYNC_FRAMES} for asynchronous tasks."),
            format!("异步任务的 MaxFrames 最大为 {MAX_ASYNC_FRAMES}。"),
        ));
    }
    let state = &context.state;
    state.fetcher.check_url(&callback_url).await.map_err(|e| CallbackUrlError(e).api_error())?;
    // What can be checked without the work: the input is there, decodes, and may be fetched.
    match Input::of(&request)? {
        Input::Content(content) => {
            drop(media::decode_base64(content).map_err(|e| ImageError(e, Source::Content).api_error())?)
        }
        Input::Url(url) => state.fetcher.check_url(url).await.api()?,
    }
    let now = chrono::Utc::now();
    let task = Task {
        task_id: context.request_id.clone(),
        account: context.account.id,
        secret_id: context.secret_id.clone(),
        data_id: request.data_id.clone().unwrap_or_default(),
        callback_url,
        request: params.to_string(),
        state: TaskState::Queued,
        result: None,
        attempts: 0,
        next_attempt_ms: now.timestamp_millis(),
        created_at: now.timestamp(),
        last_error: String::new(),
    };
    let tasks = state.tasks.clone();
    actions::blocking(move || tasks.enqueue(&task)).await?;
    state.task_queued.notify_waiters();
    metrics::counter!("ims_tasks_created_total").increment(1);
    Ok(actions::fields(json!({ "DataId": request.data_id.unwrap_or_default() })))
}

/// Starts the moderation workers and the delivery loop. What a previous process (or a node
/// that died) left running is taken over once its lease ends ([`engine::task`]).
pub fn spawn(state: AppState) {
    for _ in 0..state.task_settings.workers.max(1) {
        tokio::spawn(moderation_worker(state.clone()));
    }
    tokio::spawn(delivery_loop(state));
}

fn lease_ms(state: &AppState) -> i64 {
    state.task_settings.lease_secs.max(1) * 1000
}

async fn moderation_worker(state: AppState) {
    loop {
        // Registered before looking, so a task queued meanwhile still wakes this worker.
        let queued = state.task_queued.notified();
        let (tasks, lease) = (state.tasks.clone(), lease_ms(&state));
        match tokio::task::spawn_blocking(move || tasks.claim(engine::stamp::now_ms(), lease)).await {
            Ok(Ok(Some(task))) => {
                let renewing = tokio::spawn(renew_lease(state.clone(), task.task_id.clone()));
                process(&state, task).await;
                renewing.abort();
            }
            Ok(Ok(None)) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), queued).await;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot take a task");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Renews the lease of a task every third of its length, while its worker works (the caller
/// stops this when done).
async fn renew_lease(state: AppState, task_id: String) {
    let lease = lease_ms(&state);
    loop {
        tokio::time::sleep(Duration::from_millis(lease as u64 / 3)).await;
        let (tasks, id) = (state.tasks.clone(), task_id.clone());
        match tokio::task::spawn_blocking(move || tasks.renew(&id, engine::stamp::now_ms() + lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, task = %task_id, "cannot renew a task's lease"),
            Err(_) => tracing::warn!(task = %task_id, "renewing a task's lease panicked"),
        }
    }
}

/// Moderates a task and stores the callback body: the envelope the synchronous call would
/// have answered, success or error.
async fn process(state: &AppState, task: Task) {
    let body = match task_result(state, &task).await {
        Ok(fields) => envelope::success_body(fields, &task.task_id),
        Err(error) => error.envelope(Lang::En, &task.task_id),
    };
    let tasks = state.tasks.clone();
    let (task_id, body, now_ms) = (task.task_id.clone(), body.to_string(), engine::stamp::now_ms());
    match tokio::task::spawn_blocking(move || tasks.moderated(&task_id, &body, now_ms)).await {
        Ok(Ok(())) => state.task_queued.notify_waiters(),
        Ok(Err(error)) => tracing::error!(%error, task = %task.task_id, "cannot store a task's result"),
        Err(_) => tracing::error!(task = %task.task_id, "storing a task's result panicked"),
    }
}

async fn task_result(state: &AppState, task: &Task) -> Result<Map<String, Value>, ApiError> {
    let accounts = state.accounts.clone();
    let id = task.account;
    let account = actions::blocking(move || accounts.account(id)).await?;
    let params: Value = serde_json::from_str(&task.request).map_err(|_| ApiError::new(Code::InternalError))?;
    let request: ImageModerationRequest = parse(params)?;
    let response = moderate(state, &account, &task.task_id, request, Origin::Async, Admission::Wait).await?;
    Ok(answer::render(Version::V20201229, response))
}

async fn delivery_loop(state: AppState) {
    let limit = state.task_settings.deliveries.max(1);
    loop {
        let woken = state.task_queued.notified();
        let (tasks, lease) = (state.tasks.clone(), lease_ms(&state));
        let now_ms = engine::stamp::now_ms();
        let due = tokio::task::spawn_blocking(move || tasks.claim_due(now_ms, limit as u32, lease)).await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the tasks due for delivery");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        if let Ok(Ok((queued, running, delivering))) = {
            let tasks = state.tasks.clone();
            tokio::task::spawn_blocking(move || tasks.backlog()).await
        } {
            metrics::gauge!("ims_tasks", "state" => "queued").set(queued as f64);
            metrics::gauge!("ims_tasks", "state" => "running").set(running as f64);
            metrics::gauge!("ims_tasks", "state" => "delivering").set(delivering as f64);
        }
        if due.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), woken).await;
            continue;
        }
        let deliveries: Vec<_> = due.into_iter().map(|task| deliver(state.clone(), task)).collect();
        futures_util::future::join_all(deliveries).await;
    }
}

/// One attempt to deliver a task's result; records the outcome.
async fn deliver(state: AppState, task: Task) {
    let outcome = attempt(&state, &task).await;
    let now = chrono::Utc::now();
    let tasks = state.tasks.clone();
    let settings = state.task_settings.clone();
    let task_id = task.task_id.clone();
    let recorded = tokio::task::spawn_blocking(move || match &outcome {
        Ok(()) => tasks.delivered(&task_id, now.timestamp()),
        Err(reason) => {
            let deadline_ms = (task.created_at + settings.delivery_deadline_secs) * 1000;
            let next = next_attempt(now.timestamp_millis(), task.attempts, settings.max_backoff_secs, deadline_ms);
            if next.is_none() {
                tracing::warn!(task = %task_id, %reason, "callback abandoned after its deadline");
            }
            tasks.delivery_failed(&task_id, reason, next)
        }
    })
    .await;
    match recorded {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, task = %task.task_id, "cannot record a delivery"),
        Err(_) => tracing::error!(task = %task.task_id, "recording a delivery panicked"),
    }
}

async fn attempt(state: &AppState, task: &Task) -> Result<(), String> {
    let body = task.result.clone().unwrap_or_default();
    let accounts = state.accounts.clone();
    let secret_id = task.secret_id.clone();
    let credential = tokio::task::spawn_blocking(move || accounts.credential(&secret_id))
        .await
        .map_err(|_| "the key lookup panicked".to_string())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the key that created the task no longer exists".to_string())?;
    let timestamp = engine::stamp::now();
    let headers = [
        (
            SIGNATURE_HEADER,
            format!("t={timestamp},v1={}", signature(credential.secret_key.expose(), timestamp, body.as_bytes())),
        ),
        ("X-Ims-SecretId", task.secret_id.clone()),
        ("X-Ims-Task-Id", task.task_id.clone()),
        ("X-Ims-Attempt", (task.attempts + 1).to_string()),
    ];
    let status = state.fetcher.post_json(&task.callback_url, body.as_bytes(), &headers).await;
    let result = match status {
        Ok(200..=299) => Ok(()),
        Ok(code) => Err(format!("the callback answered HTTP {code}")),
        Err(e) => Err(e.to_string()),
    };
    let label = if result.is_ok() { "delivered" } else { "failed" };
    metrics::counter!("ims_callback_attempts_total", "outcome" => label).increment(1);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature("key", 1_700_000_000, br#"{"a":1}"#),
            "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}
