//! The `puffle` CLI against the running local stack: every command, every
//! exit code, CSV import (rejects, re-import), output formats, --wait,
//! completions and --help. The binary is `$CARGO_TARGET_DIR/debug/puffle`
//! (`cargo build -p puffle-cli`; `make test` builds it).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use puffle_tests::Ctx;
use serde_json::{json, Value};

fn bin() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    let p = target.join("debug").join("puffle");
    assert!(p.is_file(), "{} is missing: run `cargo build -p puffle-cli` first", p.display());
    p
}

/// A command with no token and an empty config dir (the developer's own
/// profile never leaks in).
fn bare(config_home: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("PUFFLE_TOKEN")
        .env("PUFFLE_API_URL", puffle_tests::api_url())
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .timeout(std::time::Duration::from_secs(120));
    c
}

struct Cli {
    ctx: Ctx,
    home: tempfile::TempDir,
}

impl Cli {
    async fn new(credits: u64) -> Cli {
        Cli { ctx: Ctx::new(credits).await, home: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self) -> Command {
        let mut c = bare(self.home.path());
        c.env("PUFFLE_TOKEN", &self.ctx.token);
        c
    }

    /// Runs `args`, expects exit 0, returns stdout as JSON.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).assert().success().get_output().stdout.clone();
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out)))
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8(self.cmd().args(args).assert().success().get_output().stdout.clone()).unwrap()
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

#[test]
fn help_for_every_command_mentions_its_flags() {
    let home = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[],
            &[
                "--api-url",
                "--token",
                "--format",
                "enrichment",
                "lead",
                "list",
                "credits",
                "login",
                "completions",
                "Exit codes",
                "PUFFLE_TOKEN",
            ],
        ),
        (&["enrichment"], &["--id", "--q", "create", "status", "results", "cancel"]),
        (
            &["enrichment", "create"],
            &[
                "--enrichment-id",
                "--scope",
                "--mode",
                "--input",
                "--output",
                "--display-request",
                "--idempotency-key",
                "--write-policy",
                "--wait",
                "--poll-interval",
                "list:<listId>",
                "filtered:<listId>:<filter>",
            ],
        ),
        (&["enrichment", "status"], &["--id", "--watch", "--poll-interval"]),
        (&["enrichment", "results"], &["--id", "--status", "--lead-id", "--cursor", "--limit", "--all", "--format"]),
        (&["enrichment", "cancel"], &["--id"]),
        (&["enrichment", "retry"], &["--id", "--status", "--idempotency-key", "--wait"]),
        (&["webhook"], &["--id", "create", "update", "delete", "rotate-secret", "deliveries", "replay", "test"]),
        (&["webhook", "create"], &["--url", "--events", "--description"]),
        (&["webhook", "update"], &["--id", "--url", "--events", "--enabled"]),
        (&["webhook", "deliveries"], &["--id", "--limit", "--cursor"]),
        (&["webhook", "replay"], &["--id", "--delivery-id"]),
        (&["lead"], &["--id", "--type", "--limit", "--cursor", "--all", "add", "import"]),
        (
            &["lead", "add"],
            &[
                "--email",
                "--name",
                "--title",
                "--company",
                "--company-domain",
                "--phone",
                "--linkedin",
                "--type",
                "--json",
            ],
        ),
        (&["lead", "import"], &["--list-id", "--type", "--map", "--rejects", "--dry-run", "rejects.csv"]),
        (&["list"], &["--id", "create", "lead"]),
        (&["list", "create"], &["--name", "--description", "--lead-type", "--lead-ids"]),
        (&["list", "lead"], &["--id", "--limit", "--cursor", "--type", "add"]),
        (&["list", "lead", "add"], &["--id", "--lead-ids"]),
        (&["credits"], &["--token", "--api-url"]),
        (&["login"], &["--token", "--api-url", "--no-verify", "0600"]),
        (&["config"], &["--token"]),
        (&["completions"], &["bash", "zsh", "fish"]),
        (&["admin"], &["workspace", "credits", "token"]),
        (&["admin", "workspace", "create"], &["--name", "--credits"]),
        (&["admin", "workspace"], &["create"]),
        (&["admin", "credits"], &["grant", "show"]),
        (&["admin", "credits", "grant"], &["--workspace-id", "--credits", "--reason"]),
        (&["admin", "credits", "show"], &["--workspace-id"]),
        (&["admin", "token"], &["create"]),
        (&["admin", "token", "create"], &["--workspace-id"]),
    ];
    for (path, flags) in cases {
        let out = bare(home.path()).args(*path).arg("--help").assert().success().get_output().stdout.clone();
        let text = String::from_utf8(out).unwrap();
        for f in *flags {
            assert!(text.contains(f), "`puffle {} --help` does not mention {f}:\n{text}", path.join(" "));
        }
    }
}

#[test]
fn completions_for_each_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(home.path()).args(["completions", shell]).assert().success().get_output().stdout.clone();
        let text = String::from_utf8(out).unwrap();
        assert!(text.len() > 1000, "{shell}: {text}");
        for word in ["enrichment", "import", "scope", "idempotency-key", "poll-interval"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    bare(home.path()).args(["completions", "tcsh"]).assert().code(2);
}

#[tokio::test]
async fn exit_codes() {
    let cli = Cli::new(10).await;
    // 0
    cli.cmd().arg("credits").assert().code(0).stdout(predicate::str::contains("\"balance\":10"));
    // 2: usage errors (clap's and ours), nothing sent.
    cli.cmd().args(["enrichment", "create", "--scope", "list:x"]).assert().code(2);
    cli.cmd().args(["lead", "--bogus"]).assert().code(2);
    cli.cmd()
        .args(["enrichment", "create", "--enrichment-id", "email_domain", "--scope", "nonsense"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("list:<listId>"));
    cli.cmd()
        .args(["enrichment", "create", "--enrichment-id", "email_domain", "--scope", "list:l", "--input", "{oops"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--input"));
    cli.cmd().args(["--format", "csv", "credits"]).assert().code(2);
    cli.cmd().args(["--api-url", "not-a-url", "credits"]).assert().code(2);
    // 3: the API rejected the request; its error JSON on stderr.
    let out =
        cli.cmd().args(["list", "lead", "--id", "list_doesnotexist"]).assert().code(3).get_output().stderr.clone();
    let err = String::from_utf8(out).unwrap();
    let first: Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(first["code"], "LIST_NOT_FOUND", "{err}");
    cli.cmd()
        .args(["enrichment", "--id", "no_such_enrichment"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("ENRICHMENT_NOT_FOUND"));
    // 4: authentication failed, or no token at all.
    cli.cmd()
        .args(["credits", "--token", "pfl_bad"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("UNAUTHENTICATED").and(predicate::str::contains("puffle login")));
    bare(cli.home.path()).arg("credits").assert().code(4).stderr(predicate::str::contains("PUFFLE_TOKEN"));
    // 5: nothing listens there.
    cli.cmd()
        .args(["credits", "--api-url", "http://127.0.0.1:9"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("could not reach the API"));
}

#[tokio::test]
async fn insufficient_credits_explains_how_to_grant() {
    let cli = Cli::new(0).await;
    let ids = cli.ctx.people("cli402", 2).await;
    let scope = format!("leads:{}", ids.join(","));
    let out = cli
        .cmd()
        .args(["enrichment", "create", "--enrichment-id", "email_domain", "--scope", &scope])
        .assert()
        .code(3)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("INSUFFICIENT_CREDITS") && err.contains("\"required\":2") && err.contains("\"balance\":0"),
        "{err}"
    );
    assert!(err.contains("puffle admin credits grant --workspace-id") && err.contains("make workspace"), "{err}");
    // A preview prices it without charging (and exits 0).
    let v =
        cli.json(&["enrichment", "create", "--enrichment-id", "email_domain", "--scope", &scope, "--mode", "preview"]);
    assert_eq!(v["leadCount"], 2);
    assert_eq!(v["reusedExistingRun"], false);
}

#[tokio::test]
async fn catalog_in_every_format() {
    let cli = Cli::new(0).await;
    let v = cli.json(&["enrichment"]);
    let slugs: Vec<String> = v["enrichments"].as_array().unwrap().iter().map(|e| s(&e["slug"])).collect();
    for slug in ["email_domain", "name_parse", "phone_normalize", "job_seniority", "company_domain"] {
        assert!(slugs.contains(&slug.to_string()), "{slugs:?}");
    }
    let one = cli.json(&["enrichment", "--id", "email_domain"]);
    assert_eq!(one["enrichments"].as_array().unwrap().len(), 1);
    let q = cli.json(&["enrichment", "--q", "phone"]);
    assert!(q["enrichments"].as_array().unwrap().iter().any(|e| e["slug"] == "phone_normalize"));
    let table = cli.stdout(&["enrichment", "--format", "table"]);
    assert!(table.starts_with("slug ") && table.contains("company_domain"), "{table}");
    let csv_text = cli.stdout(&["enrichment", "--format", "csv"]);
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(r.records().count(), slugs.len());
    let jsonl = cli.stdout(&["enrichment", "--format", "jsonl"]);
    assert_eq!(jsonl.lines().count(), slugs.len());
}

#[tokio::test]
async fn leads_and_lists() {
    let cli = Cli::new(0).await;
    let tag = puffle_tests::unique();
    let email = format!("ada.{tag}@nimbus-{tag}.example.com");
    let added = cli.json(&[
        "lead",
        "add",
        "--email",
        &email,
        "--name",
        "Ada Quill",
        "--title",
        "CTO",
        "--company",
        "Nimbus",
        "--phone",
        "+44 20 7946 0001",
        "--linkedin",
        "https://www.linkedin.com/in/ada-quill",
        "--city",
        "Leeds",
        "--country",
        "GB",
    ]);
    assert_eq!(added["created"], true);
    let lead_id = s(&added["lead"]["id"]);
    assert_eq!(added["lead"]["title"], "CTO");
    // Same email again: an update, not a new Lead.
    let again = cli.json(&["lead", "add", "--email", &email, "--title", "CEO"]);
    assert_eq!(again["created"], false);
    assert_eq!(s(&again["lead"]["id"]), lead_id);
    let co = cli.json(&[
        "lead",
        "add",
        "--json",
        &json!({"type": "company", "company": {"name": "Nimbus", "domain": format!("nimbus-{tag}.example")}})
            .to_string(),
    ]);
    let company_id = s(&co["lead"]["id"]);
    // A Lead with nothing to find it by: the API says why (exit 3).
    cli.cmd()
        .args(["lead", "add", "--title", "Nobody"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("INVALID_REQUEST"));

    let one = cli.json(&["lead", "--id", &lead_id]);
    assert_eq!(one["lead"]["title"], "CEO");
    let page = cli.json(&["lead", "--type", "person", "--limit", "10"]);
    assert_eq!(page["leads"].as_array().unwrap().len(), 1);
    let all = cli.stdout(&["lead", "--all", "--limit", "1", "--format", "jsonl"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    let csv_text = cli.stdout(&["lead", "--format", "csv"]);
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let email_col = headers.iter().position(|h| h == "email").unwrap();
    let emails: Vec<String> = r.records().map(|x| x.unwrap()[email_col].to_string()).collect();
    assert!(emails.contains(&email), "{emails:?}");
    let table = cli.stdout(&["lead", "--format", "table"]);
    assert!(table.contains("Ada Quill") && table.contains(&lead_id), "{table}");

    let list = cli.json(&[
        "list",
        "create",
        "--name",
        "CLI list",
        "--description",
        "d",
        "--lead-type",
        "mixed",
        "--lead-ids",
        &lead_id,
    ]);
    let list_id = s(&list["list"]["id"]);
    assert_eq!(list["list"]["leadCount"], 1);
    let list = cli.json(&["list", "lead", "add", "--id", &list_id, "--lead-ids", &format!("{lead_id},{company_id}")]);
    assert_eq!(list["list"]["leadCount"], 2, "adding a Lead twice changes nothing");
    let members = cli.json(&["list", "lead", "--id", &list_id, "--type", "company"]);
    assert_eq!(members["leads"].as_array().unwrap().len(), 1);
    assert_eq!(members["total"], 1, "total counts the Leads of that type");
    let table = cli.stdout(&["list", "lead", "--id", &list_id, "--format", "table"]);
    assert!(table.contains(&company_id) && table.contains(&lead_id), "{table}");
    let shown = cli.json(&["list", "--id", &list_id]);
    assert_eq!(shown["list"]["personCount"], 1);
    let lists = cli.json(&["list"]);
    assert_eq!(lists["lists"].as_array().unwrap().len(), 1);
    cli.cmd().args(["list", "lead", "add", "--id", "list_nope", "--lead-ids", &lead_id]).assert().code(3);
}

#[tokio::test]
async fn csv_import_rejects_and_dedupes() {
    let cli = Cli::new(0).await;
    let tag = puffle_tests::unique();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    let mut text = String::from(
        "Type,First Name,last_name,E-Mail,Job Title,Company,Company Website,Phone,LinkedIn URL,City,Country,Notes\n",
    );
    for i in 0..25 {
        text.push_str(&format!(
            "person,P{i},Quill,p{i}.{tag}@quill-{tag}.example.com,Engineer,Quill,https://www.quill-{tag}.example,+44 20 7946 0{i:03},,Leeds,GB,x\n"
        ));
    }
    text.push_str(&format!(",Lin,Only,,CTO,,,,https://linkedin.com/in/lin-{tag},,,\n"));
    text.push_str(&format!("company,,,,,Quill Ltd,quill-{tag}.example,,,,GB,\n"));
    // Bad rows: nothing to find it by, bad email, a public suffix as domain, bad type.
    text.push_str("person,,,,CEO,,,,,Leeds,GB,\n");
    text.push_str("person,Bad,Mail,not-an-email,CEO,,,,,,,\n");
    text.push_str("company,,,,,Suffix Inc,co.uk,,,,,\n");
    text.push_str(&format!("robot,R,B,r.{tag}@x-{tag}.example.com,,,,,,,,\n"));
    std::fs::write(&file, &text).unwrap();
    let list = cli.json(&["list", "create", "--name", "import"]);
    let list_id = s(&list["list"]["id"]);

    let path = file.to_str().unwrap();
    let first = cli.json(&["lead", "import", path, "--list-id", &list_id]);
    assert_eq!(first["rows"], 31, "{first}");
    assert_eq!(first["created"], 27, "{first}");
    assert_eq!(first["updated"], 0, "{first}");
    assert_eq!(first["rejected"], 4, "{first}");
    assert_eq!(first["listLeadCount"], 27, "{first}");
    assert_eq!(first["ignoredColumns"], json!(["Notes"]));
    let rejects = dir.path().join("people.rejects.csv");
    assert_eq!(s(&first["rejectsFile"]), rejects.to_str().unwrap());
    let mut r = csv::Reader::from_path(&rejects).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(headers.last().unwrap(), "reason");
    assert_eq!(
        headers[..12].join(","),
        "Type,First Name,last_name,E-Mail,Job Title,Company,Company Website,Phone,LinkedIn URL,City,Country,Notes"
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let reasons: Vec<(String, String)> =
        rows.iter().map(|r| (r[1].to_string() + &r[5], r[r.len() - 1].to_string())).collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons[0].1.contains("something to find it by"), "{reasons:?}");
    assert!(reasons[1].1.contains("not-an-email"), "{reasons:?}");
    assert!(reasons[2].0.contains("Suffix") && reasons[2].1.contains("public suffix"), "{reasons:?}");
    assert!(reasons[3].1.contains("robot"), "{reasons:?}");
    assert_eq!(&rows[0][12], "29", "the line number of the first bad row");

    // Re-import: upserts, no duplicates, List unchanged.
    let second = cli.json(&["lead", "import", path, "--list-id", &list_id]);
    assert_eq!(second["created"], 0, "{second}");
    assert_eq!(second["updated"], 27, "{second}");
    assert_eq!(second["listLeadCount"], 27, "{second}");
    let page = cli.json(&["lead", "--limit", "500"]);
    assert_eq!(page["leads"].as_array().unwrap().len(), 27);

    // stdin, --map, --type company, --dry-run.
    let companies = format!("Org,Site\nAcme {tag},acme-{tag}.example\nBroken,not a site\n");
    let out = cli
        .cmd()
        .args([
            "lead",
            "import",
            "-",
            "--type",
            "company",
            "--map",
            "Org=company",
            "--map",
            "site=website",
            "--dry-run",
        ])
        .arg("--rejects")
        .arg(dir.path().join("stdin.rejects.csv"))
        .write_stdin(companies.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let dry: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((dry["valid"].as_u64(), dry["rejected"].as_u64(), dry["created"].as_u64()), (Some(1), Some(1), Some(0)));
    let out = cli
        .cmd()
        .current_dir(dir.path())
        .args(["lead", "import", "-", "--type", "company"])
        .write_stdin(companies)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let real: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(real["created"], 1, "{real}");
    assert!(dir.path().join("stdin.rejects.csv").is_file());

    // Usage errors: a missing file, a file with no column that makes a Lead.
    cli.cmd().args(["lead", "import", "/nonexistent/x.csv"]).assert().code(2);
    let noid = dir.path().join("noid.csv");
    std::fs::write(&noid, "title,city\nA,B\n").unwrap();
    cli.cmd()
        .args(["lead", "import", noid.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--map"));
    // An unknown List fails before anything is written.
    cli.cmd().args(["lead", "import", path, "--list-id", "list_nope"]).assert().code(3);
}

#[tokio::test]
async fn runs_wait_results_and_cancel() {
    let cli = Cli::new(10_000).await;
    let ids = cli.ctx.people("cliwait", 3).await;
    let list_id = cli.ctx.list(&ids).await;

    // --wait on a small run: progress lines on stderr (not a terminal),
    // the final status JSON on stdout, exit 0.
    let out = cli
        .cmd()
        .args([
            "enrichment",
            "create",
            "--enrichment-id",
            "email_domain",
            "--scope",
            &format!("list:{list_id}"),
            "--wait",
            "--poll-interval",
            "0.2",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("completed: 3/3 done"))
        .get_output()
        .stdout
        .clone();
    let status: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status["run"]["status"], "completed");
    assert_eq!(status["run"]["scope"]["counts"]["completed"], 3);
    let run_id = s(&status["run"]["id"]);

    // Results as CSV, parsed back.
    let text = cli.stdout(&["enrichment", "results", "--id", &run_id, "--format", "csv"]);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    for h in ["leadId", "status", "result.domain", "result.freeMail"] {
        assert!(headers.contains(&h.to_string()), "{headers:?}");
    }
    let col = |h: &str| headers.iter().position(|x| x == h).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let mut lead_ids: Vec<String> = rows.iter().map(|x| x[col("leadId")].to_string()).collect();
    lead_ids.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(lead_ids, expected);
    assert!(rows
        .iter()
        .all(|x| &x[col("status")] == "completed" && x[col("result.domain")].starts_with("acme-cliwait")));
    assert!(rows.iter().all(|x| &x[col("result.freeMail")] == "false"));

    // --all follows page.nextCursor (one item per page here).
    let all = cli.json(&["enrichment", "results", "--id", &run_id, "--all", "--limit", "1"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert_eq!(all["page"]["nextCursor"], Value::Null);
    let page = cli.json(&["enrichment", "results", "--id", &run_id, "--limit", "1"]);
    let cursor = s(&page["page"]["nextCursor"]);
    let next = cli.json(&["enrichment", "results", "--id", &run_id, "--limit", "1", "--cursor", &cursor]);
    assert_ne!(next["items"][0]["leadId"], page["items"][0]["leadId"]);
    let jsonl = cli.stdout(&["enrichment", "results", "--id", &run_id, "--all", "--limit", "2", "--format", "jsonl"]);
    assert_eq!(jsonl.lines().count(), 3);
    let one = cli.json(&["enrichment", "results", "--id", &run_id, "--lead-id", &ids[0], "--status", "completed"]);
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let table = cli.stdout(&["enrichment", "results", "--id", &run_id, "--format", "table"]);
    assert!(table.starts_with("leadId") && table.contains("domain=acme-cliwait"), "{table}");

    // status, --watch on a finished run, table.
    let st = cli.json(&["enrichment", "status", "--id", &run_id]);
    assert_eq!(st["run"]["id"], run_id.as_str());
    let watched = cli.json(&["enrichment", "status", "--id", &run_id, "--watch", "--poll-interval", "0.2"]);
    assert_eq!(watched["run"]["status"], "completed");
    let t = cli.stdout(&["enrichment", "status", "--id", &run_id, "--format", "table"]);
    assert!(t.contains("run.status") && t.contains("completed"), "{t}");
    cli.cmd().args(["enrichment", "status", "--id", "run_nope"]).assert().code(3);

    // A completed run cannot be cancelled (409 → exit 3).
    cli.cmd()
        .args(["enrichment", "cancel", "--id", &run_id])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("RUN_NOT_CANCELLABLE"));

    // Shorthand and JSON scopes, options, idempotency.
    let filtered = cli.json(&[
        "enrichment",
        "create",
        "--enrichment-id",
        "job_seniority",
        "--scope",
        &format!("filtered:{list_id}:type=person,title~manager"),
        "--write-policy",
        "skip_existing",
        "--output",
        r#"{"attributeKey":"level"}"#,
        "--display-request",
        r#"{"fieldId":"col_7"}"#,
        "--idempotency-key",
        "cli-test-key",
        "--wait",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(filtered["run"]["scope"]["resolvedCount"], 3);
    assert_eq!(filtered["run"]["output"]["attributeKey"], "level");
    assert_eq!(filtered["run"]["trigger"]["dispatchMetadata"]["displayRequest"]["fieldId"], "col_7", "{filtered}");
    let again = cli.json(&[
        "enrichment",
        "create",
        "--enrichment-id",
        "job_seniority",
        "--scope",
        &format!("filtered:{list_id}:type=person,title~manager"),
        "--write-policy",
        "skip_existing",
        "--output",
        r#"{"attributeKey":"level"}"#,
        "--display-request",
        r#"{"fieldId":"col_7"}"#,
        "--idempotency-key",
        "cli-test-key",
    ]);
    assert_eq!(again["reusedExistingRun"], true);
    assert_eq!(s(&again["runId"]), s(&filtered["run"]["id"]));
    let scope_json = json!({"type": "explicit_leads", "leadIds": [ids[0]]}).to_string();
    let out = cli
        .cmd()
        .args([
            "enrichment",
            "create",
            "--enrichment-id",
            "phone_normalize",
            "--scope",
            &scope_json,
            "--input",
            r#"{"defaultCountry":"GB"}"#,
            "--idempotency-key",
            "auto",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("idempotency key: cli-"))
        .get_output()
        .stdout
        .clone();
    let created: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(created["leadCount"], 1);

    // Cancel a bigger run right away: cancelled, or already finished (409);
    // either way a second cancel is a 409.
    let many = cli.ctx.people("clicancel", 300).await;
    let big = cli.ctx.list(&many).await;
    let run = cli.json(&["enrichment", "create", "--enrichment-id", "name_parse", "--scope", &format!("list:{big}")]);
    let big_run = s(&run["runId"]);
    let out = cli.cmd().args(["enrichment", "cancel", "--id", &big_run]).output().unwrap();
    match out.status.code() {
        Some(0) => {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["run"]["status"], "cancelled");
            // --wait/--watch on a cancelled run: its status on stdout, exit 6.
            cli.cmd()
                .args(["enrichment", "status", "--id", &big_run, "--watch", "--poll-interval", "0.2"])
                .assert()
                .code(6)
                .stdout(predicate::str::contains("\"cancelled\""));
        }
        Some(3) => assert!(String::from_utf8_lossy(&out.stderr).contains("RUN_NOT_CANCELLABLE")),
        other => panic!("cancel exited {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
    }
    cli.cmd().args(["enrichment", "cancel", "--id", &big_run]).assert().code(3);
}

#[tokio::test]
async fn login_profile_and_precedence() {
    let cli = Cli::new(5).await;
    let other = Ctx::new(7).await;
    let home = cli.home.path();
    // A bad token is refused and nothing is written.
    bare(home).args(["login", "--token", "pfl_bad"]).assert().code(4);
    let profile = home.join("puffle").join("config.json");
    assert!(!profile.exists());
    // login writes the profile, mode 0600.
    bare(home)
        .args(["login", "--token", &cli.ctx.token])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"verified\":true"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(saved["token"], cli.ctx.token.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&profile).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // file only
    bare(home).arg("credits").assert().success().stdout(predicate::str::contains("\"balance\":5"));
    // env beats file
    bare(home)
        .env("PUFFLE_TOKEN", &other.token)
        .arg("credits")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"balance\":7"));
    bare(home).env("PUFFLE_TOKEN", "pfl_bad").arg("credits").assert().code(4);
    // flag beats env
    bare(home)
        .env("PUFFLE_TOKEN", "pfl_bad")
        .args(["credits", "--token", &other.token])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"balance\":7"));
    // The API URL: flag beats env.
    bare(home)
        .env("PUFFLE_API_URL", "http://127.0.0.1:9")
        .args(["credits", "--api-url", &puffle_tests::api_url()])
        .assert()
        .success();
    let cfg: Value = serde_json::from_slice(
        &bare(home).env("PUFFLE_TOKEN", "x").arg("config").assert().success().get_output().stdout,
    )
    .unwrap();
    assert_eq!((cfg["tokenSource"].as_str(), cfg["apiUrlSource"].as_str()), (Some("env"), Some("env")));
    let cfg: Value = serde_json::from_slice(
        &bare(home).env_remove("PUFFLE_API_URL").arg("config").assert().success().get_output().stdout,
    )
    .unwrap();
    assert_eq!(cfg["tokenSource"], "file");
    assert!(!cfg.to_string().contains(&cli.ctx.token), "the token is masked");
    // An API URL saved with login is used when neither flag nor env names one.
    bare(home)
        .args(["login", "--token", &cli.ctx.token, "--api-url", "http://127.0.0.1:9", "--no-verify"])
        .assert()
        .success();
    bare(home).env_remove("PUFFLE_API_URL").arg("credits").assert().code(5);
    bare(home).arg("credits").assert().success();
}

/// The operator commands keep working: a workspace's last stdout line is
/// `{"workspaceId","token"}`, and its token works with the API commands.
#[test]
fn admin_commands_still_work() {
    let home = tempfile::tempdir().unwrap();
    let out = bare(home.path())
        .args(["admin", "workspace", "create", "--name", "cli-admin", "--credits", "5"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let ws: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let (id, token) = (s(&ws["workspaceId"]), s(&ws["token"]));
    bare(home.path())
        .env("PUFFLE_TOKEN", &token)
        .arg("credits")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"balance\":5"));
    bare(home.path())
        .args(["admin", "credits", "grant", "--workspace-id", &id, "--credits", "7"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"balance\":12"));
    bare(home.path())
        .args(["admin", "credits", "show", "--workspace-id", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("ledger"));
    let out = bare(home.path()).args(["admin", "token", "create", "--workspace-id", &id]).assert().success();
    let t: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    bare(home.path())
        .args(["credits", "--token", &s(&t["token"])])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"balance\":12"));
    bare(home.path()).args(["admin", "workspace", "create", "--name", " "]).assert().code(2);
}

#[tokio::test]
async fn list_rules_are_created_listed_run_and_deleted() {
    let cli = Cli::new(100).await;
    let list = cli.json(&["list", "create", "--name", "rules", "--lead-type", "person"]);
    let list_id = s(&list["list"]["id"]);
    let rule = cli.json(&["list", "rule", "create", "--id", &list_id, "--enrichment-id", "email_domain"]);
    let rule_id = s(&rule["rule"]["id"]);
    assert_eq!(rule["rule"]["enrichmentId"], "email_domain");
    assert_eq!(rule["rule"]["writePolicy"], "overwrite");
    let rules = cli.json(&["list", "rule", "--id", &list_id]);
    assert_eq!(rules["rules"][0]["id"], rule_id.as_str());
    // A bad rule is the API's 400, exit code 3.
    cli.cmd()
        .args(["list", "rule", "create", "--id", &list_id, "--enrichment-id", "company_domain"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("SUBJECT_MISMATCH"));
    let deleted = cli.json(&["list", "rule", "delete", "--id", &list_id, "--rule-id", &rule_id]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(cli.json(&["list", "rule", "--id", &list_id])["rules"], json!([]));
    cli.cmd().args(["list", "rule", "delete", "--id", &list_id, "--rule-id", &rule_id]).assert().code(3);
}

#[tokio::test]
async fn webhooks_and_retries_from_the_cli() {
    let cli = Cli::new(100).await;
    // `.invalid` never resolves (RFC 6761): accepted, never reached.
    let created = cli.json(&[
        "webhook",
        "create",
        "--url",
        "https://hooks.invalid/puffle",
        "--events",
        "enrichment.run.completed,enrichment.run.failed",
    ]);
    let id = s(&created["webhook"]["id"]);
    assert!(s(&created["secret"]).starts_with("whsec_"));
    assert_eq!(created["webhook"]["events"], json!(["enrichment.run.completed", "enrichment.run.failed"]));
    assert_eq!(cli.json(&["webhook"])["webhooks"][0]["id"], id.as_str());
    assert_eq!(cli.json(&["webhook", "--id", &id])["webhook"]["enabled"], true);
    let updated = cli.json(&["webhook", "update", "--id", &id, "--events", "*", "--enabled", "false"]);
    assert_eq!((&updated["webhook"]["events"], &updated["webhook"]["enabled"]), (&json!(["*"]), &json!(false)));
    let rotated = cli.json(&["webhook", "rotate-secret", "--id", &id]);
    assert!(s(&rotated["secret"]).starts_with("whsec_") && rotated["secret"] != created["secret"]);
    let test = cli.json(&["webhook", "test", "--id", &id]);
    assert_eq!(test["delivery"]["eventType"], "webhook.test");
    let log = cli.json(&["webhook", "deliveries", "--id", &id, "--limit", "5"]);
    assert_eq!(log["deliveries"][0]["id"], test["delivery"]["id"]);
    let dlv = s(&test["delivery"]["id"]);
    assert_eq!(cli.json(&["webhook", "replay", "--id", &id, "--delivery-id", &dlv])["delivery"]["id"], dlv.as_str());
    // The API's refusals are exit code 3.
    cli.cmd()
        .args(["webhook", "create", "--url", "http://169.254.169.254/", "--events", "*"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("INVALID_REQUEST"));
    cli.cmd().args(["webhook", "update", "--id", &id]).assert().code(2);
    assert_eq!(cli.json(&["webhook", "delete", "--id", &id])["deleted"], true);
    cli.cmd().args(["webhook", "--id", &id]).assert().code(3).stderr(predicate::str::contains("WEBHOOK_NOT_FOUND"));

    // Retry: a completed run without failed items has nothing to retry.
    let lead = cli.ctx.people("cli-retry", 1).await;
    let run = cli.json(&[
        "enrichment",
        "create",
        "--enrichment-id",
        "email_domain",
        "--scope",
        &format!("leads:{}", lead[0]),
        "--wait",
    ]);
    let run_id = s(&run["run"]["id"]);
    cli.cmd()
        .args(["enrichment", "retry", "--id", &run_id])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("EMPTY_LEAD_SCOPE"));
    cli.cmd().args(["enrichment", "retry", "--id", &run_id, "--status", "skipped"]).assert().code(3);
    cli.cmd().args(["enrichment", "retry", "--id", &run_id, "--status", "pending"]).assert().code(2);
}
