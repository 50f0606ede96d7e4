//! `ims moderate`: batch moderation of files, directories and URL lists, against a running
//! server (`--server`, signed like the SDKs sign) or in this process (the same models, policies,
//! libraries and history as `ims serve` on this data directory). One line per image on standard
//! output (JSON Lines or CSV), a progress bar and a summary on standard error.

use crate::inputs::{expand, Input};
use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, ValueEnum};
use engine::accounts::{Account, AccountId};
use engine::history::Origin;
use futures_util::StreamExt;
use media::fetch::Fetcher;
use protocol::schema::Version;
use protocol::wire::ImageModerationRequest;
use serde_json::{json, Value};
use server::AppState;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct ModerateArgs {
    /// Files, directories (recursive), http(s) URLs, or @FILE listing them one per line.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// A running server (`host:port` over http, or a full http(s):// URL). Without it the images
    /// are moderated in this process.
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "IMS_SECRET_ID")]
    secret_id: Option<String>,
    #[arg(long, env = "IMS_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// In process: the account whose policies and libraries apply (default: the first main account).
    #[arg(long)]
    account: Option<i64>,
    /// The policy (BizType); empty for the default.
    #[arg(long, default_value = "")]
    biz_type: String,
    /// Images in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, value_enum, default_value = "jsonl")]
    format: OutputFormat,
    /// Write the results here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Where the images go.
enum Backend {
    Remote { client: reqwest::Client, url: String, host: String, secret_id: String, secret_key: String },
    Local { state: Box<AppState>, account: Account },
}

impl Backend {
    /// The `Response` object of one `ImageModeration` call with these parameters.
    async fn moderate(&self, params: Value) -> anyhow::Result<Value> {
        match self {
            Backend::Remote { client, url, host, secret_id, secret_key } => {
                let body = serde_json::to_vec(&params)?;
                let now = chrono::Utc::now();
                let authorization = protocol::sign::tc3_authorization(
                    secret_id,
                    secret_key,
                    now.timestamp(),
                    &now.format("%Y-%m-%d").to_string(),
                    host,
                    "application/json",
                    &body,
                );
                let reply: Value = client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-TC-Action", "ImageModeration")
                    .header("X-TC-Version", Version::V20201229.as_str())
                    .header("X-TC-Timestamp", now.timestamp().to_string())
                    .header("Authorization", authorization)
                    .body(body)
                    .send()
                    .await
                    .context("the server did not answer")?
                    .json()
                    .await
                    .context("the server's answer is not JSON")?;
                Ok(reply["Response"].clone())
            }
            Backend::Local { state, account } => {
                let request_id = engine::stamp::new_id();
                let request: ImageModerationRequest = serde_json::from_value(params)?;
                let moderated = match server::billing::admit(state, account).await {
                    Ok(()) => {
                        let admission = server::moderation::Admission::Wait;
                        server::moderation::moderate(state, account, &request_id, request, Origin::Sync, admission)
                            .await
                    }
                    Err(refused) => Err(refused),
                };
                Ok(match moderated {
                    Ok(response) => {
                        let mut fields = server::answer::render(Version::V20201229, response);
                        fields.insert("RequestId".into(), json!(request_id));
                        Value::Object(fields)
                    }
                    Err(e) => e.envelope(protocol::Lang::En, &request_id)["Response"].clone(),
                })
            }
        }
    }
}

/// One output row.
fn row(input: &Input, response: &anyhow::Result<Value>) -> Value {
    match response {
        Ok(r) if r.get("Error").is_some() => json!({
            "Input": input.label(), "RequestId": r["RequestId"],
            "Error": {"Code": r["Error"]["Code"], "Message": r["Error"]["Message"]},
        }),
        Ok(r) => json!({
            "Input": input.label(), "Suggestion": r["Suggestion"], "Label": r["Label"], "SubLabel": r["SubLabel"],
            "Score": r["Score"], "Reason": r["Reason"], "RequestId": r["RequestId"], "FileMD5": r["FileMD5"],
            "LibResults": r["LibResults"], "LabelResults": r["LabelResults"],
        }),
        Err(e) => json!({"Input": input.label(), "Error": {"Code": "ClientError", "Message": format!("{e:#}")}}),
    }
}

fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

const CSV_COLUMNS: [&str; 7] = ["Input", "Suggestion", "Label", "SubLabel", "Score", "RequestId", "Error"];

fn csv_line(row: &Value) -> String {
    CSV_COLUMNS
        .iter()
        .map(|c| if *c == "Error" { csv_field(&row["Error"]["Code"]) } else { csv_field(&row[*c]) })
        .collect::<Vec<_>>()
        .join(",")
}

fn backend(settings: &Settings, args: &ModerateArgs) -> anyhow::Result<Backend> {
    if let Some(server) = &args.server {
        let url = if server.starts_with("http://") || server.starts_with("https://") {
            server.clone()
        } else {
            format!("http://{server}/")
        };
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .with_context(|| format!("--server {server} is not an address"))?;
        let (Some(secret_id), Some(secret_key)) = (args.secret_id.clone(), args.secret_key.clone()) else {
            anyhow::bail!("--server needs --secret-id and --secret-key (or IMS_SECRET_ID and IMS_SECRET_KEY)");
        };
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
        return Ok(Backend::Remote { client, url, host, secret_id, secret_key });
    }
    let store = crate::open_store(settings)?;
    let account = match args.account {
        Some(id) => store.account(AccountId(id)).with_context(|| format!("no account {id}"))?,
        None => store
            .accounts()?
            .into_iter()
            .find(|a| a.is_main())
            .context("no main account yet: create one with `ims account create` or start `ims serve` once")?,
    };
    let state = crate::serve::app_state(settings, store, Arc::new(String::new))?;
    Ok(Backend::Local { state: Box::new(state), account })
}

pub fn run(settings: Settings, args: ModerateArgs) -> anyhow::Result<()> {
    let inputs = expand(&args.inputs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let backend = Arc::new(backend(&settings, &args)?);
    let fetcher = Arc::new(Fetcher::new(settings.fetch.clone()).map_err(anyhow::Error::msg)?);
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    if matches!(args.format, OutputFormat::Csv) {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    let progress = indicatif::ProgressBar::new(inputs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("a valid template"),
    );
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let biz_type = args.biz_type.clone();
    runtime.block_on(async {
        let mut results = futures_util::stream::iter(inputs.iter().cloned())
            .map(|input| {
                let (backend, fetcher, biz_type) = (backend.clone(), fetcher.clone(), biz_type.clone());
                async move {
                    let response = async {
                        let mut params = json!({ "BizType": biz_type });
                        match &input {
                            // Against a server, a URL is fetched by the server, under its rules.
                            Input::Url(url) => params["FileUrl"] = json!(url),
                            Input::File(_) => {
                                use base64::Engine;
                                let bytes = input.read(&fetcher).await?;
                                params["FileContent"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                            }
                        }
                        backend.moderate(params).await
                    }
                    .await;
                    row(&input, &response)
                }
            })
            .buffer_unordered(args.concurrency.max(1));
        while let Some(row) = results.next().await {
            let key = match row.get("Error") {
                Some(error) => format!("error {}", error["Code"].as_str().unwrap_or("?")),
                None => row["Suggestion"].as_str().unwrap_or("?").to_string(),
            };
            *tally.entry(key).or_default() += 1;
            let line = match args.format {
                OutputFormat::Jsonl => row.to_string(),
                OutputFormat::Csv => csv_line(&row),
            };
            writeln!(out, "{line}")?;
            progress.inc(1);
        }
        anyhow::Ok(())
    })?;
    out.flush()?;
    progress.finish_and_clear();
    let summary: Vec<String> = tally.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    eprintln!("{} images; {}", inputs.len(), summary.join(", "));
    let errors: usize = tally.iter().filter(|(k, _)| k.starts_with("error")).map(|(_, n)| n).sum();
    anyhow::ensure!(errors == 0, "{errors} images could not be moderated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let row = json!({"Input": "a,b.jpg", "Suggestion": "Pass", "Label": "Normal", "SubLabel": "", "Score": 0,
                         "RequestId": "r\"1"});
        assert_eq!(csv_line(&row), "\"a,b.jpg\",Pass,Normal,,0,\"r\"\"1\",");
    }
}
