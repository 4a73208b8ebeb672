//! Least privilege, checked. Every function's code is exercised in process
//! against the local stack while the SDK interceptor records each request it
//! sends; the IAM actions and partition-key prefixes those requests need are
//! compared with what template.yaml grants the function:
//!
//! - granted actions == the table below == the actions the code was seen to
//!   use (a grant never used is a write the function never makes; one
//!   missing would be an AccessDenied in production);
//! - `dynamodb:LeadingKeys` lists exactly the partitions the code touched;
//! - index ARNs are named exactly, and only where a Query uses the index.
//!
//! A new function is one entry in [`FUNCTIONS`]: its SDK operations and the
//! calls that exercise it. One test, alone in its binary: the recorder sees
//! every request of the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;

use puffle_aws::metrics::{record_requests, take_recorded, Recorded};
use puffle_aws::store::Row;
use puffle_aws::stream::{ChangeKind, StreamRecord};
use puffle_aws::{AwsContext, Settings};
use puffle_http::routes::Function;
use puffle_http::sqs::{handle_batch, Consumer, Message};
use serde_json::{json, Value};

/// Whose token a call carries.
#[derive(Clone, Copy)]
enum Tok {
    Main,
    /// A workspace with no credits (the 402 path).
    Poor,
}

/// One HTTP call: method, path and query (`{lead}`, `{list}`, `{run}`… are
/// filled in), JSON body, token, and what to keep from the answer
/// (`name=/json/pointer`, or ""; `~name=…`: asked again, for up to 30 s,
/// until the answer has it). A response with a next-page cursor is followed
/// once.
struct Call(&'static str, &'static str, &'static str, Tok, &'static str);

enum Scenario {
    Http(&'static [Call]),
    /// Drains the work queue through the Lambda entry point: every plan and
    /// chunk message the creates caused (after a Lead stops matching the
    /// filtered run, so its planner refunds), and one message that fails.
    Worker,
    /// A dead-lettered chunk, a dead-lettered plan step and an unreadable message.
    DeadLetters,
    /// Stream records: a run inserted without a dispatch, a run that finished,
    /// a membership of a List with a rule.
    Stream,
    /// One pass over live runs, one of them a stale run never dispatched.
    Reaper,
    /// Drains the webhook queue through the Lambda entry point: the test
    /// event, the replay and the fan-out of the stream scenario's finished run.
    Webhooks,
}

struct Expect {
    logical_id: &'static str,
    /// The SDK operations the function's code calls, as IAM actions.
    actions: &'static [&'static str],
    /// Actions of `actions` the scenario does not reach, each with why it is
    /// granted all the same.
    unreached: &'static [(&'static str, &'static str)],
    /// `LeadingKeys` prefixes the scenario does not touch, each with why
    /// they are granted all the same.
    unreached_keys: &'static [(&'static str, &'static str)],
    /// Grants the service itself uses with the function's role (not calls of
    /// its code): `(action, resource)`.
    service_side: &'static [(&'static str, &'static str)],
    scenario: Scenario,
}

const GET: &str = "GET";
const POST: &str = "POST";
const PUT: &str = "PUT";
const DELETE: &str = "DELETE";
const PATCH: &str = "PATCH";

/// A workspace-defined enrichment with an HTTP binding that needs a secret.
const FINDER: &str = r#"{"slug":"perm_finder","name":"Perm finder","subject":"person",
    "outputSchema":{"type":"object","properties":{"email":{"type":"string"}}},
    "costModel":{"creditsPerLead":1},
    "toolBinding":{"type":"http","request":{"method":"GET","url":"https://api.example.com/find?d={{lead.company.domain}}","headers":{"X-Key":"{{secrets.PERM_KEY}}"}},
        "response":{"found":"/email","result":{"email":"/email"}}}}"#;
/// A free one (`creditsPerLead: 0`): its create takes no credits and checks
/// only that the workspace exists (a ConditionCheck). It needs a secret, so
/// a rule that runs it reads the workspace's secrets. Its URL needs an
/// attribute no Lead has, so the worker skips every Lead without a call.
const FREE: &str = r#"{"slug":"perm_free","name":"Perm free","subject":"person",
    "outputSchema":{"type":"object","properties":{"email":{"type":"string"}}},
    "costModel":{"creditsPerLead":0},
    "toolBinding":{"type":"http","request":{"method":"GET","url":"https://api.example.com/find?x={{lead.attributes.perm_never_set}}","headers":{"X-Key":"{{secrets.PERM_KEY}}"}},
        "response":{"found":"/email","result":{"email":"/email"}}}}"#;
/// Another, to delete.
const FINDER_GONE: &str = r#"{"slug":"perm_gone","name":"Perm gone","subject":"person",
    "outputSchema":{"type":"object","properties":{"email":{"type":"string"}}},
    "costModel":{"creditsPerLead":1},
    "toolBinding":{"type":"http","request":{"method":"GET","url":"https://api.example.com/find?d={{lead.company.domain}}"},
        "response":{"found":"/email","result":{"email":"/email"}}}}"#;

/// In scenario order: the creates leave messages for the worker, the cancel
/// needs a run still pending, status and items read finished runs.
const FUNCTIONS: &[Expect] = &[
    Expect {
        logical_id: "HealthFunction",
        actions: &["dynamodb:GetItem", "sqs:GetQueueAttributes"],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[Call(GET, "/api/health", "", Tok::Main, "")]),
    },
    Expect {
        logical_id: "CreditsFunction",
        actions: &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[Call(GET, "/api/credits", "", Tok::Main, "")]),
    },
    Expect {
        logical_id: "CatalogFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "secretsmanager:GetSecretValue",
        ],
        // Listing the catalog reads the platform's keys: its provider entries
        // are `enabled` only when theirs is configured.
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(GET, "/api/enrichments", "", Tok::Main, ""),
            Call(GET, "/api/enrichments?id=email_domain", "", Tok::Main, ""),
            Call(GET, "/api/enrichments?q=email", "", Tok::Main, ""),
            Call(PUT, "/api/secrets/PERM_KEY", r#"{"value":"perm-secret"}"#, Tok::Main, ""),
            Call(GET, "/api/secrets", "", Tok::Main, ""),
            Call(POST, "/api/enrichments", FINDER, Tok::Main, ""),
            Call(POST, "/api/enrichments", FINDER_GONE, Tok::Main, ""),
            Call(POST, "/api/enrichments", FREE, Tok::Main, ""),
            Call(GET, "/api/enrichments?id=perm_finder", "", Tok::Main, ""),
            Call(DELETE, "/api/enrichments/perm_gone", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "LeadsFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(
                POST,
                "/api/leads",
                r#"{"type":"person","name":{"full":"Perm One"},"contacts":[{"type":"email","value":"perm1@{tag}.example"}],"attributes":{"k":"v"}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/leads",
                r#"{"leads":[{"type":"person","contacts":[{"type":"email","value":"perm1@{tag}.example"}]},{"type":"company","company":{"domain":"{tag}.example"}}]}"#,
                Tok::Main,
                "",
            ),
            Call(GET, "/api/leads?id={lead}", "", Tok::Main, ""),
            Call(GET, "/api/leads?limit=1", "", Tok::Main, ""),
            Call(GET, "/api/leads?limit=1&type=company", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "ListsFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(POST, "/api/lists", r#"{"name":"perm","leadIds":["{lead}"]}"#, Tok::Main, ""),
            Call(GET, "/api/lists?limit=1", "", Tok::Main, ""),
            Call(GET, "/api/lists/{list}", "", Tok::Main, ""),
            Call(POST, "/api/lists/{list}/leads", r#"{"leadIds":["{lead}","{lead2}"]}"#, Tok::Main, ""),
            Call(GET, "/api/lists/{list}/leads?limit=1", "", Tok::Main, ""),
            Call(GET, "/api/lists/{list}/leads?type=person", "", Tok::Main, ""),
            Call(
                POST,
                "/api/lists",
                r#"{"name":"perm people","leadType":"person","leadIds":["{lead}"]}"#,
                Tok::Main,
                "plist=/list/id",
            ),
            Call(
                POST,
                "/api/lists/{plist}/rules",
                r#"{"enrichmentId":"email_domain","input":{}}"#,
                Tok::Main,
                "rule=/rule/id",
            ),
            Call(GET, "/api/lists/{plist}/rules", "", Tok::Main, ""),
            // A Lead joins after the rule: the stack's stream consumer starts
            // the rule's run, which the runs page then reads (RUNS#).
            Call(POST, "/api/lists/{plist}/leads", r#"{"leadIds":["{lead2}"]}"#, Tok::Main, ""),
            Call(GET, "/api/lists/{plist}/rules/{rule}/runs", "", Tok::Main, "~rule_run=/runs/0/id"),
            Call(DELETE, "/api/lists/{plist}/rules/{rule}", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "CreateFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "sqs:SendMessage",
            "secretsmanager:GetSecretValue",
        ],
        unreached: &[(
            "secretsmanager:GetSecretValue",
            "an enrichment needing a platform secret (the workspace's own secret answers first here)",
        )],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            // A workspace enrichment whose secret is set (a preview: its
            // provider is never called).
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"perm_finder","mode":"preview","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"input":{}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"input":{},"idempotencyKey":"perm-{tag}"}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"input":{},"idempotencyKey":"perm-{tag}"}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"list","listId":"{list}"},"input":{},"output":{"target":"membership"},"writePolicy":"skip_existing"}"#,
                Tok::Main,
                "",
            ),
            // Explicit Leads written to their memberships: the List's members are read.
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{lead}"],"listId":"{list}"},"input":{},"output":{"target":"membership"}}"#,
                Tok::Main,
                "",
            ),
            // A free run: no credits taken, the workspace checked (ConditionCheckItem).
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"perm_free","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"input":{}}"#,
                Tok::Main,
                "",
            ),
            // A filtered List is bounded by its counters: its members are not read here.
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"filtered_list","listId":"{list}","filter":{"all":[{"field":"title","op":"not_exists"}]}},"input":{}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","mode":"preview","scope":{"type":"list","listId":"{list}"},"input":{}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{poor_lead}"]},"input":{}}"#,
                Tok::Poor,
                "",
            ),
            // Retry of a run still under way: refused (409) after reading it;
            // of a finished one without failed items: its items read, 400.
            Call(POST, "/api/enrichment/{run}/retry", r#"{"status":"failed"}"#, Tok::Main, ""),
            Call(POST, "/api/enrichment/{done_run}/retry", r#"{"status":"failed"}"#, Tok::Main, ""),
            // The last run is the one the cancel scenario cancels while pending.
            Call(
                POST,
                "/api/enrichment",
                r#"{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"input":{}}"#,
                Tok::Main,
                "",
            ),
        ]),
    },
    Expect {
        logical_id: "CancelFunction",
        actions: &["dynamodb:GetItem", "dynamodb:UpdateItem"],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(POST, "/api/enrichment/{last_run}/cancel", "", Tok::Main, ""),
            Call(POST, "/api/enrichment/{last_run}/cancel", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "WorkerFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "sqs:SendMessage",
            "sqs:ChangeMessageVisibility",
            "secretsmanager:GetSecretValue",
        ],
        unreached: &[("secretsmanager:GetSecretValue", "secrets of HTTP-binding providers (tests/providers.rs)")],
        unreached_keys: &[
            (
                "PCACHE#*",
                "the result cache of HTTP-binding providers (tests/providers.rs, a private stack and a local stub)",
            ),
            ("WSENR#*", "a workspace's own enrichments (tests/catalog.rs)"),
        ],
        service_side: &[],
        scenario: Scenario::Worker,
    },
    Expect {
        logical_id: "StatusFunction",
        actions: &["dynamodb:GetItem", "dynamodb:UpdateItem"],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[Call(GET, "/api/enrichment/{run}", "", Tok::Main, "")]),
    },
    Expect {
        logical_id: "ItemsFunction",
        actions: &["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
        unreached: &[(
            "dynamodb:BatchGetItem",
            "pending items of a run still at work, its planned chunks' Leads without an item (tests/worker_faults.rs)",
        )],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(GET, "/api/enrichment/{list_run}/items?limit=1", "", Tok::Main, ""),
            Call(GET, "/api/enrichment/{list_run}/items?status=completed&limit=1", "", Tok::Main, ""),
            Call(GET, "/api/enrichment/{run}/items?leadId={lead}", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "DlqFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
        ],
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::DeadLetters,
    },
    // The webhook the stream scenario's finished run fans out to (kept), and
    // one deleted. {hook} is a receiver on 127.0.0.1 the test process serves.
    Expect {
        logical_id: "WebhookApiFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
            "secretsmanager:GetSecretValue",
        ],
        unreached: &[(
            "secretsmanager:GetSecretValue",
            "the key that seals webhook secrets: PUFFLE_SECRETS_KEY locally, the provider secret on AWS",
        )],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(POST, "/api/webhooks", r#"{"url":"{hook}/a","events":["*"]}"#, Tok::Main, "webhook=/webhook/id"),
            Call(POST, "/api/webhooks", r#"{"url":"{hook}/b","events":["*"]}"#, Tok::Main, "webhook2=/webhook/id"),
            Call(GET, "/api/webhooks", "", Tok::Main, ""),
            Call(GET, "/api/webhooks/{webhook}", "", Tok::Main, ""),
            Call(PATCH, "/api/webhooks/{webhook}", r#"{"description":"perm"}"#, Tok::Main, ""),
            Call(POST, "/api/webhooks/{webhook}/rotate-secret", "", Tok::Main, ""),
            Call(POST, "/api/webhooks/{webhook}/test", "", Tok::Main, ""),
            Call(GET, "/api/webhooks/{webhook}/deliveries?limit=1", "", Tok::Main, "delivery=/deliveries/0/id"),
            Call(POST, "/api/webhooks/{webhook}/deliveries/{delivery}/replay", "", Tok::Main, ""),
            Call(DELETE, "/api/webhooks/{webhook2}", "", Tok::Main, ""),
        ]),
    },
    Expect {
        logical_id: "EventsFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "sqs:SendMessage",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
        ],
        unreached: &[(
            "secretsmanager:GetSecretValue",
            "a rule of an enrichment needing a platform secret (the workspace's own secret answers first here)",
        )],
        // Lambda sends the batches the function gave up on to the stream's
        // on-failure destination with the function's role.
        unreached_keys: &[],
        service_side: &[("sqs:SendMessage", "EventsFailureQueue")],
        scenario: Scenario::Stream,
    },
    Expect {
        logical_id: "WebhooksFunction",
        actions: &["dynamodb:GetItem", "dynamodb:UpdateItem", "sqs:SendMessage", "secretsmanager:GetSecretValue"],
        unreached: &[
            ("sqs:SendMessage", "the next attempt of a delivery the receiver refused (tests/webhooks.rs)"),
            (
                "secretsmanager:GetSecretValue",
                "the key that opens webhook secrets: PUFFLE_SECRETS_KEY locally, the provider secret on AWS",
            ),
        ],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Webhooks,
    },
    Expect {
        logical_id: "ReaperFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "sqs:SendMessage",
        ],
        unreached: &[
            ("dynamodb:GetItem", "giving up a run reaped too often: the run is read again before each chunk is failed"),
            ("dynamodb:PutItem", "giving up a run reaped too often: its pending items are written failed"),
        ],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Reaper,
    },
    // Every tool that reaches the API, through /mcp: the tools call the
    // API's handlers in process, so this function needs what those routes need.
    Expect {
        logical_id: "McpFunction",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "sqs:SendMessage",
            "secretsmanager:GetSecretValue",
        ],
        // Listing the catalog reads the platform's keys: its provider entries
        // are `enabled` only when theirs is configured.
        unreached: &[],
        unreached_keys: &[],
        service_side: &[],
        scenario: Scenario::Http(&[
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_enrichments","arguments":{}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_enrichments","arguments":{"q":"email"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_enrichment","arguments":{"enrichmentId":"perm_finder"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_leads","arguments":{"leads":[{"type":"person","contacts":[{"type":"email","value":"mcp@{tag}.example"}]}]}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_leads","arguments":{"leadId":"{lead}"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_leads","arguments":{"limit":1}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_leads","arguments":{"type":"company","limit":1}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_list","arguments":{"name":"perm mcp","leadIds":["{lead}"]}}}"#,
                Tok::Main,
                "mlist=/result/structuredContent/list/id",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_to_list","arguments":{"listId":"{mlist}","leadIds":["{lead2}"]}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"preview_enrichment","arguments":{"enrichmentId":"email_domain","scope":{"type":"list","listId":"{mlist}"}}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_enrichment","arguments":{"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":["{lead}"]},"idempotencyKey":"perm-mcp-{tag}"}}}"#,
                Tok::Main,
                "mrun=/result/structuredContent/runId",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_enrichment","arguments":{"enrichmentId":"perm_free","scope":{"type":"explicit_leads","leadIds":["{lead}"]}}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_run","arguments":{"runId":"{run}"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait_for_run","arguments":{"runId":"{run}","timeoutSeconds":1}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_results","arguments":{"runId":"{list_run}","limit":1}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_results","arguments":{"runId":"{list_run}","status":"completed","limit":1}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_results","arguments":{"runId":"{run}","leadId":"{lead}"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_run","arguments":{"runId":"{mrun}"}}}"#,
                Tok::Main,
                "",
            ),
            Call(
                POST,
                "/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_credits","arguments":{}}}"#,
                Tok::Main,
                "",
            ),
        ]),
    },
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ------------------------------------------------------------ the template

#[derive(Debug, Default)]
struct Grant {
    /// Actions on the table itself.
    table: BTreeSet<String>,
    /// `dynamodb:LeadingKeys` patterns of the table statement(s).
    leading_keys: BTreeSet<String>,
    /// Index name → actions on it.
    indexes: BTreeMap<String, BTreeSet<String>>,
    /// Actions on the work queue.
    sqs: BTreeSet<String>,
    /// Actions on other services' resources (the provider secret, the event bus).
    other: BTreeSet<String>,
    /// `(action, resource)` on resources only the service uses with the role.
    service_side: BTreeSet<(String, String)>,
}

fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Tagged(t) => format!("{}:{}", t.tag, scalar(&t.value)),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    match v {
        serde_yaml::Value::Sequence(s) => s.iter().map(scalar).collect(),
        serde_yaml::Value::Null => vec![],
        other => vec![scalar(other)],
    }
}

/// The one provider secret the template lets functions read.
const PROVIDER_SECRET: &str =
    "!Sub:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ProviderSecretsName}-*";

fn grants() -> BTreeMap<String, Grant> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for (id, r) in doc["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap().to_string();
        let mut g = Grant::default();
        for policy in r["Properties"]["Policies"].as_sequence().map(|s| s.as_slice()).unwrap_or(&[]) {
            let statements =
                policy["Statement"].as_sequence().unwrap_or_else(|| panic!("{id}: inline statements only"));
            for st in statements {
                assert_eq!(st["Effect"].as_str(), Some("Allow"), "{id}");
                let actions = strings(&st["Action"]);
                for resource in strings(&st["Resource"]) {
                    for a in &actions {
                        assert!(!a.contains('*'), "{id}: wildcard action {a}");
                        match resource.as_str() {
                            "!GetAtt:Table.Arn" => {
                                g.table.insert(a.clone());
                            }
                            "!GetAtt:WorkQueue.Arn" | "!GetAtt:WebhookQueue.Arn" => {
                                g.sqs.insert(a.clone());
                            }
                            "!GetAtt:EventBus.Arn" | PROVIDER_SECRET => {
                                g.other.insert(a.clone());
                            }
                            "!GetAtt:EventsFailureQueue.Arn" => {
                                g.service_side.insert((a.clone(), "EventsFailureQueue".into()));
                            }
                            r => match r.strip_prefix("!Sub:${Table.Arn}/index/") {
                                Some(index) => {
                                    assert!(!index.contains('*'), "{id}: index ARNs are named exactly, not {r}");
                                    g.indexes.entry(index.to_string()).or_default().insert(a.clone());
                                }
                                None => panic!("{id}: unexpected resource {r}"),
                            },
                        }
                    }
                    if resource == "!GetAtt:Table.Arn" {
                        let keys = &st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                        assert!(!keys.is_null(), "{id}: the table statement has no dynamodb:LeadingKeys condition");
                        g.leading_keys.extend(strings(keys));
                    }
                }
            }
        }
        out.insert(id, g);
    }
    out
}

// ------------------------------------------------------- what the code sent

#[derive(Debug, Default)]
struct Seen {
    table: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    indexes: BTreeMap<String, BTreeSet<String>>,
    sqs: BTreeSet<String>,
    other: BTreeSet<String>,
}

/// `TOKEN#abc` → `TOKEN#*`; `CONFIG` → `CONFIG` (the IAM pattern that covers it).
fn pattern(pk: &str) -> String {
    match pk.split_once('#') {
        Some((head, _)) => format!("{head}#*"),
        None => pk.to_string(),
    }
}

fn pk_of(item_or_key: &Value) -> Option<String> {
    item_or_key["pk"]["S"].as_str().map(pattern)
}

fn observe(seen: &mut Seen, r: &Recorded) {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let (service, op) = r.operation.split_once(':').unwrap();
    match service {
        "SQS" => {
            let action = match op {
                "SendMessage" | "SendMessageBatch" => "sqs:SendMessage",
                "GetQueueAttributes" => "sqs:GetQueueAttributes",
                "ChangeMessageVisibility" => "sqs:ChangeMessageVisibility",
                other => panic!("a function called SQS {other}"),
            };
            seen.sqs.insert(action.into());
        }
        "EventBridge" if op == "PutEvents" => {
            seen.other.insert("events:PutEvents".into());
        }
        "Secrets Manager" if op == "GetSecretValue" => {
            seen.other.insert("secretsmanager:GetSecretValue".into());
        }
        "DynamoDB" => {
            let mut act = |action: &str, pk: Option<String>| {
                seen.table.insert(format!("dynamodb:{action}"));
                seen.prefixes.insert(pk.unwrap_or_else(|| panic!("{op} without a pk: {body}")));
            };
            match op {
                "GetItem" | "UpdateItem" | "DeleteItem" => act(op, pk_of(&body["Key"])),
                "PutItem" => act(op, pk_of(&body["Item"])),
                "Query" => match body["IndexName"].as_str() {
                    Some(index) => {
                        seen.indexes.entry(index.to_string()).or_default().insert("dynamodb:Query".into());
                    }
                    None => {
                        let pk = body["ExpressionAttributeValues"][":pk"]["S"].as_str().map(pattern);
                        act("Query", pk)
                    }
                },
                "BatchGetItem" => {
                    for (_, req) in body["RequestItems"].as_object().unwrap() {
                        for k in req["Keys"].as_array().unwrap() {
                            act("BatchGetItem", pk_of(k));
                        }
                    }
                }
                "BatchWriteItem" => {
                    for (_, reqs) in body["RequestItems"].as_object().unwrap() {
                        for w in reqs.as_array().unwrap() {
                            let pk = pk_of(&w["PutRequest"]["Item"]).or_else(|| pk_of(&w["DeleteRequest"]["Key"]));
                            act("BatchWriteItem", pk);
                        }
                    }
                }
                // IAM checks a transaction's actions one by one.
                "TransactWriteItems" => {
                    for t in body["TransactItems"].as_array().unwrap() {
                        for (kind, action) in [
                            ("Put", "PutItem"),
                            ("Update", "UpdateItem"),
                            ("Delete", "DeleteItem"),
                            ("ConditionCheck", "ConditionCheckItem"),
                        ] {
                            if !t[kind].is_null() {
                                let pk = pk_of(&t[kind]["Item"]).or_else(|| pk_of(&t[kind]["Key"]));
                                act(action, pk);
                            }
                        }
                    }
                }
                other => panic!("a function called DynamoDB {other}"),
            }
        }
        other => panic!("a function called {other} {op}"),
    }
}

fn seen_of(recorded: Vec<Recorded>) -> Seen {
    let mut seen = Seen::default();
    for r in &recorded {
        observe(&mut seen, r);
    }
    seen
}

// --------------------------------------------------------------- exercising

struct World {
    aws: AwsContext,
    token: String,
    poor_token: String,
    vars: HashMap<String, String>,
    runs: Vec<String>,
}

const PLACEHOLDERS: &[&str] = &[
    "{lead}",
    "{lead2}",
    "{poor_lead}",
    "{list}",
    "{plist}",
    "{rule}",
    "{run}",
    "{list_run}",
    "{last_run}",
    "{tag}",
    "{mlist}",
    "{mrun}",
    "{rule_run}",
    "{hook}",
    "{done_run}",
    "{webhook}",
    "{webhook2}",
    "{delivery}",
];

impl World {
    fn fill(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        if let Some(r) = self.runs.first() {
            out = out.replace("{run}", r);
        }
        if let Some(r) = self.runs.get(1) {
            out = out.replace("{list_run}", r);
        }
        if let Some(r) = self.runs.last() {
            out = out.replace("{last_run}", r);
        }
        for p in PLACEHOLDERS {
            assert!(!out.contains(p), "{p} is not known yet in {out}");
        }
        out
    }

    /// A fresh App per function: its own token cache and cursor key, as a
    /// cold function would start.
    fn app(&self) -> puffle_app::App {
        puffle_app::App::new(self.aws.clone())
    }

    fn ws(&self) -> &str {
        &self.vars["ws"]
    }
}

fn lambda_request(method: &str, path_and_query: &str, body: &str, token: &str) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut q: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url_pairs(query) {
        q.entry(k).or_default().push(v);
    }
    let mut params = HashMap::new();
    if let Some(route) = puffle_http::routes::ROUTES
        .iter()
        .find(|r| r.method == method && puffle_http::routes::match_path(r.path, path).is_some())
    {
        for (k, v) in puffle_http::routes::match_path(route.path, path).unwrap() {
            params.insert(k, v);
        }
    }
    let body = if body.is_empty() { lambda_http::Body::Empty } else { lambda_http::Body::Text(body.to_string()) };
    lambda_http::http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        // What API Gateway and Streamable HTTP clients send (/mcp answers
        // 400 without a Host, 406 without this Accept).
        .header("host", "perm.execute-api.localhost")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .unwrap()
        .with_query_string_parameters(q)
        .with_path_parameters(params)
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace("%3D", "="))
        })
        .collect()
}

fn body_json(resp: &lambda_http::Response<lambda_http::Body>) -> Value {
    match resp.body() {
        // Not JSON: the text itself, for the failure message.
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
        lambda_http::Body::Binary(b) => {
            serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()))
        }
        _ => Value::Null,
    }
}

fn function_of(logical_id: &str) -> Function {
    *Function::ALL
        .iter()
        .find(|f| logical_id.to_lowercase() == format!("{}function", f.binary().replace('-', "")))
        .unwrap_or_else(|| panic!("{logical_id} is not an HTTP function"))
}

async fn run_http(world: &mut World, logical_id: &str, calls: &[Call]) -> Vec<Recorded> {
    let function = function_of(logical_id);
    let app = world.app();
    let mut recorded = vec![];
    for Call(method, path, body, tok, save) in calls {
        let token = match tok {
            Tok::Main => world.token.clone(),
            Tok::Poor => world.poor_token.clone(),
        };
        let (path, body) = (world.fill(path), world.fill(body));
        let (save, patient) = match save.strip_prefix('~') {
            Some(s) => (s, true),
            None => (*save, false),
        };
        let mut tries = 0;
        let (status, v) = loop {
            take_recorded();
            let resp =
                puffle_http::handlers::handle(&app, function, lambda_request(method, &path, &body, &token)).await;
            recorded.extend(take_recorded());
            let v = body_json(&resp);
            let waiting = save.split_once('=').is_some_and(|(_, pointer)| v.pointer(pointer).is_none());
            tries += 1;
            if !(patient && waiting && tries < 60) {
                break (resp.status().as_u16(), v);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert!(status < 500, "{logical_id}: {method} {path} answered {status} {v}");
        if path == "/mcp" {
            // A tool call is a 200 JSON-RPC answer; a failed one says isError.
            assert!(status == 200 && v["result"]["isError"] == false, "{logical_id}: {body} answered {status} {v}");
        }
        if let Some((name, pointer)) = save.split_once('=') {
            let value = v.pointer(pointer).and_then(Value::as_str);
            let value = value.unwrap_or_else(|| panic!("{logical_id}: {method} {path}: no {pointer} in {status} {v}"));
            world.vars.insert(name.to_string(), value.to_string());
        }
        if let Some(id) = v["runId"].as_str() {
            if v["reusedExistingRun"] == false {
                world.runs.push(id.to_string());
            }
        }
        if let Some(id) = v["list"]["id"].as_str() {
            world.vars.entry("list".into()).or_insert_with(|| id.to_string());
        }
        let next = v["nextCursor"].as_str().or_else(|| v["page"]["nextCursor"].as_str());
        if let Some(cursor) = next {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = format!("{path}{sep}cursor={}", cursor.replace('=', "%3D"));
            take_recorded();
            let resp = puffle_http::handlers::handle(&app, function, lambda_request(method, &url, "", &token)).await;
            recorded.extend(take_recorded());
            assert_eq!(resp.status().as_u16(), 200, "{logical_id}: {url}: {}", body_json(&resp));
        }
    }
    recorded
}

/// Everything on the queue, deleted as it is read (outside the recording).
async fn receive_all(queue: &puffle_aws::Queue) -> Vec<Message> {
    let mut out = vec![];
    loop {
        let batch = queue.receive(10, 0).await.expect("receive");
        if batch.is_empty() {
            return out;
        }
        for m in batch {
            queue.delete(&m.receipt_handle).await.expect("delete");
            out.push(Message { id: m.message_id, body: m.body, receive_count: m.receive_count });
        }
    }
}

/// An SQS event of the messages on the queue (up to 10), as the event
/// source mapping hands it over; the caller deletes what succeeded.
async fn sqs_event(queue: &puffle_aws::Queue) -> (SqsEvent, Vec<(String, String)>) {
    let batch = queue.receive(10, 0).await.expect("receive");
    let receipts = batch.iter().map(|m| (m.message_id.clone(), m.receipt_handle.clone())).collect();
    let records: Vec<Value> = batch
        .into_iter()
        .map(|m| {
            json!({"messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                "messageAttributes": {}, "eventSource": "aws:sqs"})
        })
        .collect();
    (serde_json::from_value(json!({"Records": records})).expect("an SqsEvent"), receipts)
}

/// Feeds the work queue to the worker's Lambda entry until it is empty: the
/// first batch also carries a message that fails (its retry delay is set).
async fn run_worker(world: &World) -> Vec<Recorded> {
    let app = world.app();
    let retitled = json!({"type": "person", "title": "CEO",
        "contacts": [{"type": "email", "value": format!("b@{}.example", world.vars["tag"])}]});
    app.upsert_leads(world.ws(), vec![retitled]).await.expect("retitle a Lead");
    world.aws.queue.send_raw("not a work message").await.expect("send the failing message");
    let mut recorded = vec![];
    for _ in 0..100 {
        let (event, receipts) = sqs_event(&world.aws.queue).await;
        if receipts.is_empty() {
            return recorded;
        }
        take_recorded();
        let resp = puffle_http::sqs::handle_event(&app, Consumer::Worker, event).await;
        recorded.extend(take_recorded());
        let failed: Vec<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        for (id, receipt) in receipts {
            // The event source mapping deletes what succeeded; the failing
            // message is deleted too, after its one recorded failure.
            let _ = world.aws.queue.delete(&receipt).await;
            assert!(!failed.contains(&id) || failed.len() == 1, "worker failed messages {failed:?}");
        }
    }
    panic!("the work queue never drained");
}

async fn run_dead_letters(world: &World) -> Vec<Recorded> {
    let setup = world.app();
    let lead = &world.vars["lead"];
    let body = json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":[lead]},"input":{}});
    let ws = world.ws().to_string();
    // Two runs: one whose plan step dead-letters, one whose chunk does.
    for _ in 0..2 {
        setup.create_run(&ws, &body, None, "perm").await.expect("create");
    }
    let mut plans = receive_all(&world.aws.queue).await;
    assert_eq!(plans.len(), 2);
    let planned = plans.pop().unwrap();
    let failed = handle_batch(&setup, Consumer::Worker, vec![planned]).await;
    assert!(failed.is_empty());
    let mut letters: Vec<Message> =
        receive_all(&world.aws.queue).await.into_iter().filter(|m| m.body.contains("\"chunk\"")).collect();
    assert_eq!(letters.len(), 1, "one chunk message");
    letters.extend(plans);
    letters.push(Message { id: "dead-junk".into(), body: "not a work message".into(), receive_count: 5 });
    let app = world.app();
    take_recorded();
    let failed = handle_batch(&app, Consumer::DeadLetters, letters).await;
    let recorded = take_recorded();
    assert!(failed.is_empty(), "{failed:?}");
    recorded
}

/// A copy of a finished run under a new id, pending: never dispatched (what
/// a create that died after its commit leaves behind), or dispatched with a
/// message that was lost (`lost_message`: the stack's own stream consumer
/// only dispatches runs without a trigger, so such a run waits for the reaper).
async fn undispatched_run(world: &World, lost_message: bool) -> String {
    let app = world.app();
    let source = app.store().get_run(world.ws(), &world.runs[0]).await.unwrap().expect("the first run");
    let mut run = source.run.clone();
    run.id = puffle_domain::ids::run_id();
    run.status = puffle_domain::run::RunStatus::Pending;
    run.trigger.trigger_run_id = lost_message.then(|| "perm-lost-message".to_string());
    let reserve = puffle_domain::credits::LedgerEntry::reserve(0, "perm", &run.id, &puffle_domain::time::now());
    app.store().create_run(world.ws(), &run, 0, 0, None, &reserve, vec![]).await.expect("write the run");
    run.id
}

fn record(kind: ChangeKind, keys: (String, String), old: Option<Row>, new: Option<Row>, seq: &str) -> StreamRecord {
    let mut k: Row = HashMap::new();
    k.insert("pk".into(), puffle_aws::store::s(keys.0));
    k.insert("sk".into(), puffle_aws::store::s(keys.1));
    StreamRecord {
        event_id: format!("perm-{seq}"),
        sequence_number: seq.to_string(),
        kind,
        created_at_ms: chrono::Utc::now().timestamp_millis() as u64,
        keys: k,
        old_image: old,
        new_image: new,
    }
}

async fn run_stream(world: &World) -> Vec<Recorded> {
    let setup = world.app();
    let ws = world.ws().to_string();
    let get = |key: (String, String)| {
        let setup = setup.clone();
        async move { setup.store().get_row(key).await.unwrap().expect("row") }
    };
    // 1. A run inserted and never dispatched: the stream dispatches it.
    let waiting = undispatched_run(world, false).await;
    let inserted = get(puffle_aws::keys::run(&ws, &waiting)).await;
    // 2. A run that finished: its lifecycle event.
    let done = get(puffle_aws::keys::run(&ws, &world.runs[0])).await;
    let mut before = done.clone();
    before.insert("status".into(), puffle_aws::store::s("running"));
    // 3. A Lead joins a person List with a rule: the rule starts a run.
    let list = setup
        .create_list(&ws, serde_json::from_value(json!({"name": "perm rules", "leadType": "person"})).unwrap())
        .await
        .expect("a person List");
    setup.create_rule(&ws, &list.id, json!({"enrichmentId": "email_domain", "input": {}})).await.expect("a rule");
    // A free rule: its run takes no credits, only checks the workspace.
    setup.create_rule(&ws, &list.id, json!({"enrichmentId": "perm_free", "input": {}})).await.expect("a free rule");
    let lead = world.vars["lead"].clone();
    let records = vec![
        record(ChangeKind::Insert, puffle_aws::keys::run(&ws, &waiting), None, Some(inserted), "0001"),
        record(ChangeKind::Modify, puffle_aws::keys::run(&ws, &world.runs[0]), Some(before), Some(done), "0002"),
        record(ChangeKind::Insert, puffle_aws::keys::member(&ws, &list.id, &lead), None, None, "0003"),
    ];
    let app = world.app();
    take_recorded();
    let failed = app.handle_stream(&records).await;
    let recorded = take_recorded();
    assert_eq!(failed, None, "a stream record failed");
    recorded
}

async fn run_webhooks(world: &World) -> Vec<Recorded> {
    let deliveries = receive_all(&world.aws.webhook_queue).await;
    let bodies: Vec<&str> = deliveries.iter().map(|m| m.body.as_str()).collect();
    assert!(deliveries.len() >= 3, "the test event, the replay and the fan-out: {bodies:?}");
    let app = world.app();
    take_recorded();
    let failed = handle_batch(&app, Consumer::Webhooks, deliveries).await;
    let recorded = take_recorded();
    assert!(failed.is_empty(), "{failed:?}");
    recorded
}

/// A run planned and enriched through the Lambda entry point before any
/// scenario records (what retry reads).
async fn finished_run(world: &World) -> String {
    let app = world.app();
    let lead = &world.vars["lead"];
    let body = json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":[lead]},"input":{}});
    let created = app.create_run(world.ws(), &body, None, "perm-setup").await.expect("create");
    let run_id = created.response.run_id.expect("a run");
    for _ in 0..10 {
        let messages = receive_all(&world.aws.queue).await;
        if messages.is_empty() {
            break;
        }
        assert!(handle_batch(&app, Consumer::Worker, messages).await.is_empty());
    }
    let run = app.run_status(world.ws(), &run_id).await.expect("status");
    assert!(run.status.is_terminal(), "{run:?}");
    run_id
}

/// A webhook receiver on 127.0.0.1 answering 204 to every POST.
async fn hook_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router =
        axum::Router::new().route("/{*path}", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn run_reaper(world: &World) -> Vec<Recorded> {
    // Not one the stack's stream consumer would dispatch first (and its
    // worker then plan) while this scenario sets up.
    undispatched_run(world, true).await;
    // A run whose chunk message was lost: planned, its items still pending.
    let setup = world.app();
    let lead = &world.vars["lead"];
    let body = json!({"enrichmentId":"email_domain","scope":{"type":"explicit_leads","leadIds":[lead]},"input":{}});
    setup.create_run(world.ws(), &body, None, "perm").await.expect("create");
    let plans = receive_all(&world.aws.queue).await;
    assert!(handle_batch(&setup, Consumer::Worker, plans).await.is_empty());
    let lost = receive_all(&world.aws.queue).await;
    assert!(lost.iter().any(|m| m.body.contains("\"chunk\"")), "the planned run's chunk");
    let app = world.app();
    // Every live run is stale (this pass drives them all), and none is given up.
    let settings = puffle_app::reaper::ReaperSettings { stale_after: Duration::ZERO, max_reaps: u32::MAX };
    take_recorded();
    let report = app.reap(settings).await.expect("a reaper pass");
    let recorded = take_recorded();
    assert!(report.dispatched >= 1 && report.chunks_resent >= 1, "{report:?}");
    recorded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_is_granted_exactly_what_its_code_uses() {
    if std::env::var("PUFFLE_CURSOR_SECRET").is_err() {
        // What the template gives every paging function (the local stack sets one too).
        std::env::set_var("PUFFLE_CURSOR_SECRET", "permissions-test");
    }
    // The provider secret is read from the stack's moto (none there: an
    // empty secret), so the code's Secrets Manager calls are seen too.
    std::env::set_var("PUFFLE_PROVIDER_SECRETS_NAME", "puffle/permissions-test");
    if let Ok(events) = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE") {
        std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", events);
    }
    // Webhook targets: a receiver in this process, let through the egress guard.
    let hook = hook_receiver().await;
    std::env::set_var("PUFFLE_EGRESS_ALLOW_HOSTS", hook.trim_start_matches("http://"));
    let grants = grants();
    let listed: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.logical_id).collect();
    let deployed: BTreeSet<&str> = grants.keys().map(String::as_str).collect();
    assert_eq!(listed, deployed, "every template function has one entry in FUNCTIONS");

    // A private queue: the shared stack's worker must not take these messages.
    let base = puffle_tests::app().await;
    let name = format!("perm-{}", puffle_tests::unique());
    let url = base.aws.queue.client().create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let hook_queue = format!("perm-hooks-{}", puffle_tests::unique());
    let hook_url =
        base.aws.queue.client().create_queue().queue_name(&hook_queue).send().await.unwrap().queue_url.unwrap();
    let settings = Settings {
        queue_url: Some(url),
        queue_name: name,
        webhook_queue_url: Some(hook_url.clone()),
        webhook_queue_name: hook_queue,
        ..base.aws.settings.clone()
    };
    let aws = AwsContext::with_config(base.aws.sdk.clone(), settings);

    let main = base.create_workspace("perm", 1_000_000).await.unwrap();
    let poor = base.create_workspace("perm-poor", 0).await.unwrap();
    let tag = puffle_tests::unique();
    let person = |t: &str| json!({"type":"person","name":{"full":"P"},"contacts":[{"type":"email","value":format!("{t}@{tag}.example")}]});
    let leads = base.upsert_leads(&main.workspace_id, vec![person("a"), person("b")]).await.unwrap();
    let poor_lead = base.upsert_leads(&poor.workspace_id, vec![person("c")]).await.unwrap();
    let mut vars = HashMap::new();
    vars.insert("tag".to_string(), tag.clone());
    vars.insert("hook".to_string(), hook.clone());
    vars.insert("ws".to_string(), main.workspace_id.clone());
    vars.insert("lead".to_string(), leads.leads[0].id.clone());
    vars.insert("lead2".to_string(), leads.leads[1].id.clone());
    vars.insert("poor_lead".to_string(), poor_lead.leads[0].id.clone());
    let mut world = World { aws, token: main.token, poor_token: poor.token, vars, runs: vec![] };
    let done = finished_run(&world).await;
    world.vars.insert("done_run".into(), done);

    record_requests(true);
    let mut problems = vec![];
    for f in FUNCTIONS {
        let recorded = match &f.scenario {
            Scenario::Http(calls) => run_http(&mut world, f.logical_id, calls).await,
            Scenario::Worker => run_worker(&world).await,
            Scenario::DeadLetters => run_dead_letters(&world).await,
            Scenario::Stream => run_stream(&world).await,
            Scenario::Reaper => run_reaper(&world).await,
            Scenario::Webhooks => run_webhooks(&world).await,
        };
        let seen = seen_of(recorded);
        let g = &grants[f.logical_id];
        let id = f.logical_id;
        let table: BTreeSet<String> = f.actions.iter().map(|a| a.to_string()).collect();
        let unreached: BTreeSet<String> = f.unreached.iter().map(|(a, _)| a.to_string()).collect();
        let all = |t: &BTreeSet<String>,
                   q: &BTreeSet<String>,
                   o: &BTreeSet<String>,
                   i: &BTreeMap<String, BTreeSet<String>>| {
            t.iter().chain(q).chain(o).chain(i.values().flatten()).cloned().collect::<BTreeSet<String>>()
        };
        let granted = all(&g.table, &g.sqs, &g.other, &g.indexes);
        let used = all(&seen.table, &seen.sqs, &seen.other, &seen.indexes);
        if granted != table {
            problems.push(format!("{id}: template grants {granted:?}, FUNCTIONS lists {table:?}"));
        }
        let expected_used: BTreeSet<String> = table.difference(&unreached).cloned().collect();
        if used != expected_used {
            problems.push(format!(
                "{id}: code used {used:?}, FUNCTIONS expects {expected_used:?} (unreached {unreached:?})"
            ));
        }
        if !seen.table.is_subset(&g.table) || !seen.sqs.is_subset(&g.sqs) || !seen.other.is_subset(&g.other) {
            problems.push(format!("{id}: a call on a resource without its grant: {seen:?} vs {g:?}"));
        }
        for (index, actions) in &seen.indexes {
            if !g.indexes.get(index).is_some_and(|a| actions.is_subset(a)) {
                problems.push(format!("{id}: uses index {index} ({actions:?}) without a grant on it"));
            }
        }
        for (index, actions) in &g.indexes {
            let reached = seen.indexes.get(index).is_some_and(|a| a == actions);
            if !reached && !actions.iter().all(|a| unreached.contains(a)) {
                problems.push(format!("{id}: index {index} granted {actions:?}, used {:?}", seen.indexes.get(index)));
            }
        }
        let touched: BTreeSet<String> =
            seen.prefixes.iter().cloned().chain(f.unreached_keys.iter().map(|(k, _)| k.to_string())).collect();
        if g.leading_keys != touched
            && !(f.unreached.iter().any(|(a, _)| a.starts_with("dynamodb:"))
                && seen.prefixes.is_subset(&g.leading_keys))
        {
            problems.push(format!("{id}: LeadingKeys {:?}, partitions touched {:?}", g.leading_keys, seen.prefixes));
        }
        if !seen.prefixes.is_subset(&g.leading_keys) {
            problems.push(format!(
                "{id}: touched partitions outside LeadingKeys: {:?}",
                seen.prefixes.difference(&g.leading_keys).collect::<Vec<_>>()
            ));
        }
        let service: BTreeSet<(String, String)> =
            f.service_side.iter().map(|(a, r)| (a.to_string(), r.to_string())).collect();
        if g.service_side != service {
            problems.push(format!("{id}: service-side grants {:?}, FUNCTIONS lists {service:?}", g.service_side));
        }
    }
    record_requests(false);
    let _ = world.aws.queue.client().delete_queue().queue_url(world.aws.queue.url().await.unwrap()).send().await;
    let _ = world.aws.queue.client().delete_queue().queue_url(hook_url).send().await;
    assert!(problems.is_empty(), "least privilege:\n{}", problems.join("\n"));
}
