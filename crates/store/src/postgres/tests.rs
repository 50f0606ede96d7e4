//! The conformance suites on a real PostgreSQL: one server for this test binary, a fresh
//! database per suite.

use super::PostgresStore;
use crate::conformance::{self, billing, console, faces, history, keywords, libraries, rates, search, tasks};
use crate::testing::TempPostgres;
use crate::Sealer;

/// Runs each suite on a store of its own database; names each as it goes.
#[test]
fn every_repository_conforms_on_postgres() {
    let Some(server) = TempPostgres::start() else { return };
    let mut fresh = {
        let mut n = 0;
        move |suite: &str| {
            n += 1;
            eprintln!("postgres conformance: {suite}");
            let url = server.create_database(&format!("conformance_{n}"));
            PostgresStore::open(&url, Sealer::from_key(&[1; 32])).expect("opens and migrates")
        }
    };
    conformance::accounts_and_grants(&fresh("accounts"));
    conformance::at_most_two_active_keys(&fresh("keys"));
    conformance::racing_first_accounts_make_one(&fresh("first account"));
    conformance::racing_key_creations_stop_at_the_limit(&fresh("racing keys"));
    conformance::policies_are_per_owner_and_names_are_unique(&fresh("policies"));
    conformance::racing_policy_creations_make_one(&fresh("racing policies"));
    history::filters_pages_stats_corrections_and_retention(&fresh("history"));
    keywords::libraries_keywords_and_a_matcher_that_follows_them(&fresh("keywords"));
    libraries::libraries_samples_and_a_matcher_that_follows_changes(&fresh("libraries"));
    tasks::a_task_goes_through_its_states_under_leases_that_outlive_a_crash(&fresh("tasks"));
    tasks::racing_claims_take_each_task_once(&fresh("racing claims"));
    rates::racing_admissions_are_exact_and_the_window_slides(&fresh("rate limits"));
    console::sessions_passwords_and_failures(&fresh("console"));
    faces::face_libraries_people_and_a_matcher_that_follows_them(&fresh("faces"));
    search::groups_pictures_limits_and_an_index_that_follows_them(&fresh("search"));
    search::racing_pictures_stop_at_the_entity_limit(&fresh("racing pictures"));
    type Suite = fn(PostgresStore);
    let suites: [(&str, Suite); 9] = [
        ("trial", billing::the_trial_covers_images_until_it_expires_and_never_aigc),
        ("packages", billing::stacked_packages_are_drawn_earliest_expiry_first),
        ("settlement", billing::daily_settlement_bills_pay_as_you_go_and_suspends_in_arrears),
        ("top-up", billing::a_top_up_within_seven_days_resumes_and_after_that_the_activation_is_destroyed),
        ("arrears", billing::activation_again_is_refused_while_in_arrears),
        ("refunds", billing::an_unused_package_is_refundable_for_thirty_days),
        ("monthly tiers", billing::monthly_tiers_settle_once_the_month_closes),
        ("concurrent metering", billing::concurrent_metering_is_exact),
        ("racing settlements", billing::racing_settlements_bill_each_day_once),
    ];
    for (name, suite) in suites {
        suite(fresh(name));
    }
}

/// Several nodes opening one new database at once: one migrates, the others wait and find the
/// schema done; the schema is at its last version.
#[test]
fn nodes_starting_together_migrate_once() {
    let Some(server) = TempPostgres::start() else { return };
    let url = server.create_database("racing_migrations");
    std::thread::scope(|scope| {
        let nodes: Vec<_> =
            (0..4).map(|_| scope.spawn(|| PostgresStore::open(&url, Sealer::from_key(&[1; 32])).map(drop))).collect();
        for node in nodes {
            node.join().unwrap().expect("every node opens the store");
        }
    });
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=super::MIGRATIONS.len() as i32).collect::<Vec<_>>());
}
