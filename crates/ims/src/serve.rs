//! `ims serve`: open storage, make sure an account exists, start the HTTP server.

use crate::settings::{LogFormat, Settings};
use anyhow::Context;
use engine::accounts::KeyStatus;
use engine::billing::BillingRepository;
use engine::decision::{Label, Suggestion};
use engine::faces::FaceMatcher;
use engine::history::retention_cutoff;
use engine::keywords::{built_in_words, KeywordLibrary, KeywordMatcher, BUILT_IN};
use engine::library::Matcher;
use engine::search::GroupIndex;
use inference::analyzer::{Analyzer, Backend};
use server::{AppState, MetricsRender};
use std::sync::Arc;
use store::Store;
use tracing_subscriber::EnvFilter;

pub fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.log.level).context("invalid log.level")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match settings.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
    Ok(())
}

/// The first account of a fresh database, with one key, and how to call the server with it.
/// Of nodes starting together on an empty shared database, one makes the account; the others
/// print no credentials unless its key is there by the time they look.
pub fn bootstrap(repo: &dyn Store, settings: &Settings) -> anyhow::Result<Option<(String, String)>> {
    let first = match repo.create_first_account(&settings.bootstrap.account_name)? {
        Some(account) => {
            repo.create_key(account.id)?;
            crate::billing::activate_new(repo, &crate::prices(settings)?, account.id)?;
            tracing::info!(account = %account.id, "created the first main account and its key");
            account
        }
        None => repo.accounts()?.into_iter().find(|a| a.is_main()).context("the first main account vanished")?,
    };
    let key = repo.keys(Some(first.id))?.into_iter().find(|k| k.status == KeyStatus::Active);
    let Some(key) = key else { return Ok(None) };
    let credential = repo.credential(&key.secret_id)?.context("the first account's key vanished")?;
    Ok(Some((key.secret_id, credential.secret_key.expose().to_string())))
}

/// Everything a moderation needs, on the store: the models, the fetcher, the libraries' index.
/// `metrics` renders `/metrics`.
pub fn app_state(settings: &Settings, store: Arc<dyn Store>, metrics: MetricsRender) -> anyhow::Result<AppState> {
    let health_store = store.clone();
    let fetcher = media::fetch::Fetcher::new(settings.fetch.clone())
        .map_err(anyhow::Error::msg)
        .context("cannot build the URL fetcher")?;
    let analyzer = Analyzer::runtime(&settings.inference)
        .and_then(|runtime| Analyzer::load(&runtime, &settings.inference, &settings.faces))
        .context(
            "cannot load the models (scripts/fetch.py installs them; inference.artifacts_dir says where they are)",
        )?;
    tracing::info!(models = ?analyzer.models(), "models loaded");
    let matcher = Arc::new(Matcher::new());
    matcher.refresh(store.as_ref()).context("cannot load the image libraries")?;
    tracing::info!(hashes = matcher.len(), "image libraries loaded");
    let face_matcher = Arc::new(FaceMatcher::new());
    face_matcher.refresh(store.as_ref()).context("cannot load the face libraries")?;
    tracing::info!(people = face_matcher.len(), "face libraries loaded");
    let group_index = Arc::new(GroupIndex::new());
    group_index.refresh(store.as_ref()).context("cannot load the image-search groups")?;
    tracing::info!(hashes = group_index.len(), "image-search groups loaded");
    Ok(AppState {
        settings: Arc::new(settings.server.clone()),
        accounts: store.clone(),
        policies: store.clone(),
        libraries: store.clone(),
        history: store.clone(),
        tasks: store.clone(),
        billing: store.clone(),
        prices: Arc::new(crate::prices(settings)?),
        keywords: store.clone(),
        keyword_matcher: Arc::new(KeywordMatcher::with_built_in(built_in_keywords(&settings.inference.artifacts_dir))),
        matcher,
        analyzer: Arc::new(analyzer),
        history_settings: Arc::new(settings.history.clone()),
        face_settings: Arc::new(settings.faces.clone()),
        faces: store.clone(),
        face_matcher,
        groups: store.clone(),
        group_index,
        task_settings: Arc::new(settings.tasks.clone()),
        task_queued: Arc::new(tokio::sync::Notify::new()),
        fetcher: Arc::new(fetcher),
        decode_slots: AppState::decode_slots(&settings.server),
        in_flight: AppState::in_flight(&settings.server),
        health: Arc::new(move || health_store.ping().map_err(|e| e.to_string())),
        metrics,
        console: store.clone(),
        limiter: store.admission(),
        console_settings: Arc::new(settings.console.clone()),
        console_chart: std::fs::read(settings.inference.artifacts_dir.join("console/chart.umd.min.js"))
            .ok()
            .map(Into::into),
    })
}

/// The built-in keyword libraries the setup installed under `<artifacts>/words/`, one folder
/// each (JSON arrays, objects with a `words` array, or text with one word a line); none for a
/// folder that is absent. Each applies only where a policy names it (docs/text.md).
fn built_in_keywords(artifacts: &std::path::Path) -> Vec<(KeywordLibrary, Vec<String>)> {
    const LIBRARIES: [(&str, &str, &str, Label); 2] = [
        ("abuse", "builtin-abuse", "Built-in: profanity and sexual terms (en, zh)", Label::Abuse),
        ("sensitive", "builtin-sensitive", "Built-in: terms censored in China (zh)", Label::Polity),
    ];
    let mut libraries = Vec::new();
    for (folder, lib_id, name, label) in LIBRARIES {
        let mut files: Vec<_> = std::fs::read_dir(artifacts.join("words").join(folder))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        let mut words = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else { continue };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Array(list)) => {
                    words.extend(list.iter().filter_map(|w| w.as_str().map(String::from)))
                }
                Ok(value) => words.extend(
                    value["words"].as_array().into_iter().flatten().filter_map(|w| w.as_str().map(String::from)),
                ),
                Err(_) => words.extend(text.lines().map(String::from)),
            }
        }
        let words = built_in_words(words);
        if words.is_empty() {
            continue;
        }
        tracing::info!(library = lib_id, words = words.len(), "built-in keyword library loaded");
        let library = KeywordLibrary {
            lib_id: lib_id.into(),
            owner: BUILT_IN,
            lib_name: name.into(),
            label,
            suggestion: Suggestion::Review,
            created_at: 0,
        };
        libraries.push((library, words));
    }
    libraries
}

pub fn run(settings: Settings) -> anyhow::Result<()> {
    // Before any thread starts (the store's pool, the models' workers, the runtime).
    server::memory::limit_allocator_arenas();
    init_logging(&settings)?;
    let store = crate::open_store(&settings)?;
    let credentials = bootstrap(store.as_ref(), &settings)?;
    // Histograms with buckets (not summaries), so that they add up across servers.
    let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0];
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()), &seconds)
        .context("cannot set the metrics' buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let metered = store.clone();
    let state = app_state(
        &settings,
        store,
        Arc::new(move || {
            billing_metrics(metered.as_ref());
            metrics.render()
        }),
    )?;
    let tls = tls(&settings.server.tls)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Standard output, not the log: this is for the person who started the server.
        println!("ims listening on {scheme}://{address}");
        if let (true, Some((secret_id, secret_key))) = (settings.bootstrap.print_credentials, &credentials) {
            println!("SecretId:  {secret_id}\nSecretKey: {secret_key}");
            println!("Point any Tencent Cloud SDK for ims at endpoint {address} over {scheme} (see README.md).");
            if settings.console.enabled {
                println!("The console: {scheme}://{address}/console (sign in with the SecretId and SecretKey).");
            }
        }
        tracing::info!(%address, scheme, "serving");
        server::tasks::spawn(state.clone());
        server::billing::spawn_settlement(state.clone());
        tokio::spawn(purge_loop(state.clone()));
        server::memory::spawn_trimmer(state.clone());
        let config = tls.map(|(certificates, config)| {
            server::tls::spawn_reloader(certificates);
            config
        });
        server::serve(listener, config, state, shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// The certificate served and the TLS configuration, when `server.tls` is set; a certificate
/// that cannot be read, or a key that is not its own, stops the start.
fn tls(
    settings: &server::tls::TlsSettings,
) -> anyhow::Result<Option<(Arc<server::tls::Certificates>, server::tls::ServerConfig)>> {
    let Some((cert, key)) = settings.files()? else { return Ok(None) };
    let certificates = Arc::new(server::tls::Certificates::load(cert, key).context("cannot use server.tls")?);
    let config = server::tls::server_config(certificates.clone(), settings.client_ca.as_deref())
        .context("cannot use server.tls.client_ca")?;
    Ok(Some((certificates, config)))
}

/// Sets the billing gauges of `/metrics` from the database: each main account's balance and
/// its images metered since the beginning, by service and source.
fn billing_metrics(store: &dyn BillingRepository) {
    match store.billing_accounts() {
        Ok(accounts) => {
            for a in accounts {
                let labels = [("account", a.owner.to_string()), ("currency", a.balance.currency.code().to_string())];
                metrics::gauge!("ims_billing_balance_minor", &labels).set(a.balance.minor as f64);
            }
        }
        Err(error) => tracing::error!(%error, "cannot read balances for /metrics"),
    }
    match store.totals() {
        Ok(totals) => {
            for (owner, service, count) in totals {
                for (source, n) in [("trial", count.trial), ("package", count.package), ("payg", count.payg)] {
                    let labels = [
                        ("account", owner.to_string()),
                        ("service", service.as_str().to_string()),
                        ("source", source.to_string()),
                    ];
                    metrics::counter!("ims_billing_images_total", &labels).absolute(n);
                }
            }
        }
        Err(error) => tracing::error!(%error, "cannot read usage for /metrics"),
    }
}

/// Deletes results (and the metering keys) older than `history.retention_days`, and console
/// sessions past their time, at start and then hourly. The daily usage counts and bills stay.
async fn purge_loop(state: AppState) {
    let days = state.history_settings.retention_days;
    loop {
        let (history, billing, console) = (state.history.clone(), state.billing.clone(), state.console.clone());
        let now = engine::stamp::now();
        let cutoff = retention_cutoff(now, days);
        let rules = state.console_settings.rules();
        let purged = tokio::task::spawn_blocking(move || {
            // Sessions that can no longer be used, and failed sign-ins no longer counted.
            console
                .purge_sessions(rules.idle_cutoff(now), now - rules.lifetime_secs, rules.failure_window_start(now))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((
                history.purge(cutoff).map_err(|e| e.to_string())?,
                billing.purge_events(cutoff).map_err(|e| e.to_string())?,
            ))
        });
        match purged.await {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((results, keys))) => tracing::info!(results, keys, days, "purged old results and metering keys"),
            Ok(Err(error)) => tracing::error!(%error, "cannot purge old results"),
            Err(_) => tracing::error!("the purge panicked"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
