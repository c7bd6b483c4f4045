#!/usr/bin/env bash
# Deploys the onboarding control plane to Google Cloud. Safe to re-run: every resource is
# described before it is created, bindings and deployments converge. See README, "Deploying to Google Cloud".
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./deploy.sh --project PROJECT_ID --region REGION [options]

Creates or updates everything the onboarding control plane needs in one project:
APIs, one service account per function, Pub/Sub topics with dead-letter topics,
the Firestore database, the Cloud KMS key, the central BigQuery dataset and tables,
every Cloud Function (2nd gen, Python 3.12), the daily purge's Cloud Scheduler job, and
one API Gateway in front of the HTTP functions: the single public URL, whose service
account is the only invoker of those functions.

Options:
  --project ID               Google Cloud project id (required)
  --region REGION            region of the functions, Firestore, KMS key (required), e.g. europe-west1
  --bigquery-location LOC    location of the BigQuery datasets (default: the region)
  --operator MEMBER          may call the operator routes, user:EMAIL or serviceAccount:EMAIL (repeatable);
                             a Google ID token names no group, so groups are listed member by member
  --billing-publisher MEMBER may publish billing messages on the billing-events topic and nothing else
                             (roles/pubsub.publisher on that topic only), e.g.
                             serviceAccount:invoicing@billing-project.iam.gserviceaccount.com (repeatable)
  --executor MEMBER          a pipeline executor: pulls admitted runs from the pipeline-runs-executor subscription
                             and publishes its reports on pipeline-run-results, nothing else (repeatable)
  --dry-run                  print every command, one per line after "+ ", and run none
  -h, --help                 this help

In --dry-run, gcloud is never called: each resource is assumed absent, so the plan
shows the describe check and the create it leads to; values known only after a
real call appear as <placeholders>. Only .deploy/PROJECT/ is written: the functions'
env-vars file and their staged source (runtime code and runtime pins).
EOF
}

die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 2
}

PROJECT=""
REGION=""
BQ_LOCATION=""
DRY_RUN=0
OPERATORS=()
BILLING_PUBLISHERS=()
EXECUTORS=()
while (($#)); do
  case $1 in
    --project) PROJECT=${2:-}; shift 2 || die "--project needs a value" ;;
    --project=*) PROJECT=${1#*=}; shift ;;
    --region) REGION=${2:-}; shift 2 || die "--region needs a value" ;;
    --region=*) REGION=${1#*=}; shift ;;
    --bigquery-location) BQ_LOCATION=${2:-}; shift 2 || die "--bigquery-location needs a value" ;;
    --bigquery-location=*) BQ_LOCATION=${1#*=}; shift ;;
    --operator) OPERATORS+=("${2:-}"); shift 2 || die "--operator needs a value" ;;
    --operator=*) OPERATORS+=("${1#*=}"); shift ;;
    --billing-publisher) BILLING_PUBLISHERS+=("${2:-}"); shift 2 || die "--billing-publisher needs a value" ;;
    --billing-publisher=*) BILLING_PUBLISHERS+=("${1#*=}"); shift ;;
    --executor) EXECUTORS+=("${2:-}"); shift 2 || die "--executor needs a value" ;;
    --executor=*) EXECUTORS+=("${1#*=}"); shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $PROJECT ]] || { usage >&2; die "--project is required"; }
[[ -n $REGION ]] || { usage >&2; die "--region is required"; }
[[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "not a project id: $PROJECT"
[[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "not a region: $REGION"
for member in "${OPERATORS[@]+"${OPERATORS[@]}"}"; do
  [[ $member =~ ^(group|domain): ]] && die "$member: an ID token names no group or domain; list its members as user: or serviceAccount:"
  [[ $member =~ ^(user|serviceAccount):[^@[:space:],]+@[^@[:space:],]+$ ]] || die "not a user or service account member: $member"
done
for member in "${BILLING_PUBLISHERS[@]+"${BILLING_PUBLISHERS[@]}"}" "${EXECUTORS[@]+"${EXECUTORS[@]}"}"; do
  [[ $member =~ ^(user|group|serviceAccount|domain):.+ ]] || die "not an IAM member: $member"
done

cd "$(dirname "$0")"
# The plan goes to the original stdout even from inside $(...).
exec 3>&1
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

if [[ -n ${PYTHON:-} ]]; then
  :
elif [[ -x .venv/bin/python ]]; then
  PYTHON=.venv/bin/python
else
  PYTHON=python3
fi
if ((!DRY_RUN)); then
  command -v gcloud >/dev/null || die "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
fi

# ---------------------------------------------------------------- printing and running

# Like Python's shlex.quote, so every printed command can be split back into its arguments.
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

show() {
  local line="+" arg
  for arg in "$@"; do
    line+=" $(quote "$arg")"
  done
  printf '%s\n' "$line" >&3
}

note() {
  printf '# %s\n' "$*" >&3
}

run() {
  show "$@"
  ((DRY_RUN)) || "$@"
}

# IAM is eventually consistent: a service account created seconds ago may not be found yet.
run_iam() {
  show "$@"
  ((DRY_RUN)) && return 0
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    ((attempt < 5)) || break
    printf 'deploy.sh: retrying in %ss\n' $((attempt * 5)) >&2
    sleep $((attempt * 5))
  done
  return 1
}

# The describe half of "describe before create": false when absent (always, in a dry run).
exists() {
  show "$@"
  ((DRY_RUN)) && return 1
  "$@" >/dev/null 2>&1
}

# A value read from the cloud; in a dry run, its placeholder.
lookup() {
  local placeholder=$1
  shift
  show "$@"
  if ((DRY_RUN)); then
    printf '%s' "$placeholder"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------- configuration

ENV_FILE=.deploy/$PROJECT/env.yml
SOURCE_DIR=.deploy/$PROJECT/source
"$PYTHON" -m scripts.stage_source "$SOURCE_DIR"
settings=$("$PYTHON" -m scripts.deploy_config --project="$PROJECT" --region="$REGION" \
  --bigquery-location="$BQ_LOCATION" --env-file="$ENV_FILE")
{
  read -r CENTRAL_DATASET
  read -r BQ_LOCATION
  read -r MAX_DELIVERY_ATTEMPTS
  read -r KEY_RING
  read -r CRYPTO_KEY
  read -r ROTATION_PERIOD
  read -r NEXT_ROTATION
  read -r TOPIC_VALIDATIONS
  read -r TOPIC_BILLING
  read -r TOPIC_LIFECYCLE
  read -r TOPIC_PIPELINE_RUNS
  read -r TOPIC_RUN_RESULTS
  # Then one line per provisioning step, from its declaration (shared/domain/steps.py):
  # name, topic, "root" when onboarding publishes it ("applied" when onboarding's own commit completes it,
  # "-" when its last prerequisite releases it), the topics it releases (comma-separated, or -), its roles.
  STEPS=() STEP_TOPICS=() STEP_ROOTS=() STEP_RELEASES=() STEP_GRANTS=()
  while read -r step topic root releases grants; do
    STEPS+=("$step")
    STEP_TOPICS+=("$topic")
    STEP_ROOTS+=("$root")
    STEP_RELEASES+=("$releases")
    STEP_GRANTS+=("$grants")
  done
} <<<"$settings"
KMS_KEY=projects/$PROJECT/locations/$REGION/keyRings/$KEY_RING/cryptoKeys/$CRYPTO_KEY

# The front door. Operators ask for ID tokens with this audience (service accounts:
# gcloud auth print-identity-token --impersonate-service-account=SA --audiences=AUDIENCE); a user's
# gcloud token carries gcloud's own OAuth client id as its audience, accepted as well.
API_ID=onboarding-api
GATEWAY_ID=onboarding-gateway
API_CONFIG_FILE=.deploy/$PROJECT/api-config.json
OPERATOR_AUDIENCE=onboarding-operators-$PROJECT
GCLOUD_USER_AUDIENCE=32555940559.apps.googleusercontent.com

step_topic() {
  local index
  for index in "${!STEPS[@]}"; do
    [[ ${STEPS[$index]} == "$1" ]] && { printf '%s' "${STEP_TOPICS[$index]}"; return 0; }
  done
  die "no step named $1"
}
DEAD_LETTER_TOPICS=()
ROOT_STEP_PUBLISHERS=""  # onboarding publishes the steps without prerequisites
STEP_PUBLISHERS=""       # retry and the reconciler may republish any step onboarding does not complete itself
for index in "${!STEPS[@]}"; do
  DEAD_LETTER_TOPICS+=("${STEP_TOPICS[$index]}-dead-letter")
  [[ ${STEP_ROOTS[$index]} != applied ]] && STEP_PUBLISHERS+=" pubsub.publisher@topic:${STEP_TOPICS[$index]}"
  [[ ${STEP_ROOTS[$index]} == root ]] && ROOT_STEP_PUBLISHERS+=" pubsub.publisher@topic:${STEP_TOPICS[$index]}"
done
BILLING_DEAD_LETTER=$TOPIC_BILLING-dead-letter
DEAD_LETTER_TOPICS+=("$BILLING_DEAD_LETTER")
RUN_RESULTS_DEAD_LETTER=$TOPIC_RUN_RESULTS-dead-letter
DEAD_LETTER_TOPICS+=("$RUN_RESULTS_DEAD_LETTER")
# Executors pull admitted runs from this subscription; a run not acknowledged in time is redelivered, and one
# never reported is timed out by its lease (pipeline_runs.lease_seconds), whatever the subscription does.
EXECUTOR_SUBSCRIPTION=$TOPIC_PIPELINE_RUNS-executor
# The purge runs daily: Cloud Scheduler publishes on this topic (no code reads its name).
TOPIC_PURGE=tenant-purge
PURGE_JOB=tenant-purge-daily
PURGE_SCHEDULE='30 3 * * *'
# Every few minutes the reconciler republishes steps a crash stranded between commit and publish.
TOPIC_RECONCILE=tenant-reconcile
RECONCILE_JOB=tenant-reconcile-every-5-minutes
RECONCILE_SCHEDULE='*/5 * * * *'
# Every hour the sweeper deletes records past their expire_at (Firestore's TTL policies do it within about a day).
TOPIC_SWEEP=records-sweep
SWEEP_JOB=records-sweep-hourly
SWEEP_SCHEDULE='17 * * * *'
TOPICS=("$TOPIC_VALIDATIONS" "${STEP_TOPICS[@]}" "$TOPIC_BILLING" "$TOPIC_LIFECYCLE" "$TOPIC_PIPELINE_RUNS" "$TOPIC_RUN_RESULTS"
  "$TOPIC_PURGE" "$TOPIC_RECONCILE" "$TOPIC_SWEEP")

# Deleting a dataset with its tables needs bigquery.datasets.delete and bigquery.tables.delete
# (https://cloud.google.com/bigquery/docs/managing-datasets#delete-datasets); no predefined role short of
# bigquery.dataOwner (which may also rewrite dataset access) has the first: the purge and the dataset step
# (which recreates an orphan dataset when asked to) get this custom role, on tenant datasets only.
PURGE_ROLE_ID=onboardingDatasetPurger
PURGE_ROLE=projects/$PROJECT/roles/$PURGE_ROLE_ID
PURGE_PERMISSIONS=bigquery.datasets.delete,bigquery.tables.delete

# Roles are written ROLE (project-wide), ROLE@central (the central dataset only),
# ROLE@tenant-datasets (every dataset but the central one), ROLE@topic:NAME or ROLE@key (the KMS key);
# ROLE is a predefined role without its roles/ prefix, or a custom role's full name.
# Purge: finds offboarded tenants and deletes their state, processed markers and audit record (Firestore);
# deletes each tenant's dataset, named by tenant id at run time, hence the grant on every dataset but the
# central one; deletes the tenant's rows in the central tables (DML jobs).
PURGE_GRANTS="datastore.user bigquery.jobUser bigquery.dataEditor@central $PURGE_ROLE@tenant-datasets"

# HTTP functions, one line each: name, timeout, roles from what its handler touches.
HTTP_TABLE=(
  # writes validations/{id}, reads tenants; SELECT 1; dataset and central-table metadata; publishes the validation.
  "dryrun 60s datastore.user bigquery.jobUser bigquery.metadataViewer pubsub.publisher@topic:$TOPIC_VALIDATIONS"
  # tenant, API key and idempotency documents; whether a dataset of the tenant's name exists (datasets.get,
  # tenant datasets only); encrypts (and on replay decrypts) the key; publishes the steps without prerequisites;
  # may wait up to http.max_wait_seconds for the outcome.
  "onboard_tenant 120s datastore.user bigquery.metadataViewer@tenant-datasets cloudkms.cryptoKeyEncrypterDecrypter@key$ROOT_STEP_PUBLISHERS"
  # reads tenants/{id}.
  "tenant_status 60s datastore.viewer"
  # reads API keys and the tenant document; the overview is computed from it (no BigQuery query).
  "tenant_overview 60s datastore.viewer"
  # touches nothing: its account has no role.
  "healthz 60s"
  # publishes the billing message it was given, nothing else.
  "billing_events_http 60s pubsub.publisher@topic:$TOPIC_BILLING"
  # reads the tenant's audit records and tenants/{id}.
  "tenant_events_http 60s datastore.viewer"
  "purge_expired_http 540s $PURGE_GRANTS"
  # a FAILED tenant's document and its dead-letter records; republishes the failed steps.
  "retry_tenant_steps 60s datastore.user$STEP_PUBLISHERS"
  # reads the dead-letter records.
  "dead_letters 60s datastore.viewer"
  # API key, tenant, run, idempotency and outbox documents in one transaction; publishes the admitted run;
  # appends the usage row and the run to the central tables (insertAll: no job).
  "run_pipeline 60s datastore.user bigquery.dataEditor@central pubsub.publisher@topic:$TOPIC_PIPELINE_RUNS"
  # an executor's report: run and tenant documents in one transaction; the usage row and the run appended.
  "pipeline_results_http 60s datastore.user bigquery.dataEditor@central"
  # operators' suspend, resume, offboard: as billing_event (tenant, API key, processed-event and audit documents in
  # one transaction; the central tables' rows; tenant-lifecycle); API key rotation encrypts the new key (never decrypts).
  "tenant_admin 60s datastore.user bigquery.dataEditor@central pubsub.publisher@topic:$TOPIC_LIFECYCLE cloudkms.cryptoKeyEncrypter@key"
)
HTTP_FUNCTIONS=()
for line in "${HTTP_TABLE[@]}"; do
  HTTP_FUNCTIONS+=("${line%% *}")
done
EVENT_FUNCTIONS=(billing_event billing_dead_letter pipeline_run_result pipeline_result_dead_letter purge_expired reconcile_steps
  sweep_expired_records)

# Service account ids: 6-30 characters, lowercase, digits and hyphens.
sa_email() {
  local id=$1
  printf 'onb-%s@%s.iam.gserviceaccount.com' "${id//_/-}" "$PROJECT"
}
TRIGGER_SA=$(sa_email trigger)
GATEWAY_SA=$(sa_email gateway)
BUILD_SA=$(sa_email build)
SA_NAMES=("${HTTP_FUNCTIONS[@]}")
for step in "${STEPS[@]}"; do
  SA_NAMES+=("step_$step")
done
SA_NAMES+=(step_dead_letter "${EVENT_FUNCTIONS[@]}" trigger build gateway)

FUNCTIONS=("${HTTP_FUNCTIONS[@]}")
for step in "${STEPS[@]}"; do
  FUNCTIONS+=("step_$step")
done
for step in "${STEPS[@]}"; do
  FUNCTIONS+=("step_dead_letter_$step")
done
FUNCTIONS+=("${EVENT_FUNCTIONS[@]}")

note "deploy.sh plan for project $PROJECT, region $REGION$( ((DRY_RUN)) && printf ' (dry run: nothing is run)')"
note "functions: ${FUNCTIONS[*]}"
note "topics: ${TOPICS[*]}"
note "dead-letter topics: ${DEAD_LETTER_TOPICS[*]}"
note "central dataset: $CENTRAL_DATASET ($BQ_LOCATION); KMS key: $KMS_KEY"
note "env vars of every function: $ENV_FILE"

# ---------------------------------------------------------------- APIs

note "APIs"
run gcloud services enable \
  cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com pubsub.googleapis.com \
  firestore.googleapis.com bigquery.googleapis.com cloudkms.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com iam.googleapis.com logging.googleapis.com cloudresourcemanager.googleapis.com \
  cloudscheduler.googleapis.com apigateway.googleapis.com servicemanagement.googleapis.com servicecontrol.googleapis.com \
  monitoring.googleapis.com --project="$PROJECT"

PROJECT_NUMBER=$(lookup '<project-number>' gcloud projects describe "$PROJECT" --format='value(projectNumber)')
PUBSUB_AGENT=serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com

# ---------------------------------------------------------------- service accounts

note "service accounts: one per function, one for Eventarc triggers, one for builds, one for the API gateway"
for name in "${SA_NAMES[@]}"; do
  email=$(sa_email "$name")
  exists gcloud iam service-accounts describe "$email" --project="$PROJECT" ||
    run gcloud iam service-accounts create "${email%%@*}" --display-name="onboarding $name" --project="$PROJECT"
done

# ---------------------------------------------------------------- Firestore, KMS, Pub/Sub

note "Firestore (native mode) in $REGION"
exists gcloud firestore databases describe --database='(default)' --project="$PROJECT" ||
  run gcloud firestore databases create --database='(default)' --location="$REGION" --type=firestore-native --project="$PROJECT"

# Records with a lifetime carry expire_at (a timestamp); a TTL policy per collection group deletes them,
# "typically within 24 hours after" it passes: https://cloud.google.com/firestore/docs/ttl
TTL_COLLECTIONS=(validations latest_validations processed_events dead_letters idempotency_keys)
note "Firestore TTL policies on expire_at: ${TTL_COLLECTIONS[*]}"
for group in "${TTL_COLLECTIONS[@]}"; do
  run gcloud firestore fields ttls update expire_at --collection-group="$group" --enable-ttl --async --project="$PROJECT"
done

# The paged list queries filter on one field (or several, comma-separated) and order by another: each needs
# a composite index. https://cloud.google.com/firestore/docs/query-data/index-overview#composite_indexes
# Its id is the server's, so there is no describe by name: the list of the collection group says.
firestore_index() {
  local group=$1 filters=$2 field=$3 order=$4 existing filter
  local -a configs=() matches=("name:collectionGroups/$group/")
  IFS=, read -ra filter_fields <<<"$filters"
  for filter in "${filter_fields[@]}"; do
    configs+=(--field-config="field-path=$filter,order=ascending")
    matches+=("fields.fieldPath=$filter")
  done
  matches+=("fields.fieldPath=$field")
  existing=$(lookup '' gcloud firestore indexes composite list \
    --filter="$(IFS=' '; printf '%s' "${matches[*]}" | sed 's/ / AND /g')" --format='value(name)' --project="$PROJECT")
  [[ -n $existing ]] && return 0
  run gcloud firestore indexes composite create --collection-group="$group" --query-scope=collection \
    "${configs[@]}" --field-config="field-path=$field,order=$order" --async --project="$PROJECT"
}
note "Firestore composite indexes for the paged queries"
firestore_index dead_letters tenant_id dead_lettered_at descending
firestore_index dead_letters status dead_lettered_at descending
firestore_index tenant_events tenant_id occurred_at ascending
firestore_index tenants status updated_at ascending
# GET /api/v1/tenants: newest first, by status, by plan or by both.
firestore_index tenants status created_at descending
firestore_index tenants subscription_plan created_at descending
firestore_index tenants status,subscription_plan created_at descending

note "Cloud KMS key for API keys (symmetric, rotated every $ROTATION_PERIOD)"
exists gcloud kms keyrings describe "$KEY_RING" --location="$REGION" --project="$PROJECT" ||
  run gcloud kms keyrings create "$KEY_RING" --location="$REGION" --project="$PROJECT"
exists gcloud kms keys describe "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" --project="$PROJECT" ||
  run gcloud kms keys create "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" --purpose=encryption \
    --rotation-period="$ROTATION_PERIOD" --next-rotation-time="$NEXT_ROTATION" --project="$PROJECT"

# Billing systems publish on TOPIC_BILLING: its schema (generated from schemas.events.BillingEvent by
# `make schemas`) makes Pub/Sub refuse a malformed message at publish. Protocol Buffer, not Avro: with JSON
# encoding an Avro schema expects Avro's JSON encoding, which our plain-JSON billing messages are not
# (schemas/pubsub_schema.py says why).
BILLING_SCHEMA=billing-event
BILLING_SCHEMA_FILE=schemas/pubsub/BillingEvent.proto
note "Pub/Sub schema $BILLING_SCHEMA ($BILLING_SCHEMA_FILE), enforced on $TOPIC_BILLING"
exists gcloud pubsub schemas describe "$BILLING_SCHEMA" --project="$PROJECT" ||
  run gcloud pubsub schemas create "$BILLING_SCHEMA" --type=protocol-buffer --definition-file="$BILLING_SCHEMA_FILE" \
    --project="$PROJECT"

note "Pub/Sub topics, and a dead-letter topic with a retained subscription per step topic"
for topic in "${TOPICS[@]}" "${DEAD_LETTER_TOPICS[@]}"; do
  schema=()
  [[ $topic != "$TOPIC_BILLING" ]] || schema=(--schema="$BILLING_SCHEMA" --message-encoding=json)
  if exists gcloud pubsub topics describe "$topic" --project="$PROJECT"; then
    # An existing billing topic gets (or keeps) the schema.
    ((${#schema[@]} == 0)) || run gcloud pubsub topics update "$topic" "${schema[@]}" --project="$PROJECT"
  else
    run gcloud pubsub topics create "$topic" "${schema[@]+"${schema[@]}"}" --project="$PROJECT"
  fi
done
note "pipeline executors: subscribers on $EXECUTOR_SUBSCRIPTION, publishers on $TOPIC_RUN_RESULTS only"
exists gcloud pubsub subscriptions describe "$EXECUTOR_SUBSCRIPTION" --project="$PROJECT" ||
  run gcloud pubsub subscriptions create "$EXECUTOR_SUBSCRIPTION" --topic="$TOPIC_PIPELINE_RUNS" --ack-deadline=60 \
    --message-retention-duration=7d --expiration-period=never --project="$PROJECT"
for member in "${EXECUTORS[@]+"${EXECUTORS[@]}"}"; do
  run_iam gcloud pubsub subscriptions add-iam-policy-binding "$EXECUTOR_SUBSCRIPTION" --member="$member" \
    --role=roles/pubsub.subscriber --project="$PROJECT" --format=none
  run_iam gcloud pubsub topics add-iam-policy-binding "$TOPIC_RUN_RESULTS" --member="$member" \
    --role=roles/pubsub.publisher --project="$PROJECT" --format=none
done
note "billing systems: publishers on $TOPIC_BILLING only"
for member in "${BILLING_PUBLISHERS[@]+"${BILLING_PUBLISHERS[@]}"}"; do
  run_iam gcloud pubsub topics add-iam-policy-binding "$TOPIC_BILLING" --member="$member" \
    --role=roles/pubsub.publisher --project="$PROJECT" --format=none
done
for topic in "${DEAD_LETTER_TOPICS[@]}"; do
  exists gcloud pubsub subscriptions describe "$topic-sub" --project="$PROJECT" ||
    run gcloud pubsub subscriptions create "$topic-sub" --topic="$topic" --message-retention-duration=7d \
      --expiration-period=never --ack-deadline=60 --project="$PROJECT"
  # Pub/Sub forwards undeliverable messages as its own service agent.
  run_iam gcloud pubsub topics add-iam-policy-binding "$topic" --member="$PUBSUB_AGENT" \
    --role=roles/pubsub.publisher --project="$PROJECT" --format=none
done

# ---------------------------------------------------------------- least-privilege roles

note "custom role $PURGE_ROLE_ID: delete datasets and their tables"
if exists gcloud iam roles describe "$PURGE_ROLE_ID" --project="$PROJECT"; then
  run gcloud iam roles update "$PURGE_ROLE_ID" --project="$PROJECT" --permissions="$PURGE_PERMISSIONS" --format=none
else
  run gcloud iam roles create "$PURGE_ROLE_ID" --project="$PROJECT" --title="Onboarding dataset purger" \
    --description="Deletes offboarded tenants' datasets" --permissions="$PURGE_PERMISSIONS" --stage=GA --format=none
fi

project_binding() {
  local name=$1 role=$2
  shift 2
  run_iam gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$(sa_email "$name")" \
    --role="$role" --format=none "$@"
}

# grant NAME ROLE...: the roles of one function's account, written as described above HTTP_TABLE.
# BigQuery honours IAM conditions on resource.name, which is how a grant reaches some datasets only.
grant() {
  local name=$1 spec role scope dataset=projects/$PROJECT/datasets/$CENTRAL_DATASET
  shift
  for spec in "$@"; do
    role=${spec%%@*}
    scope=""
    [[ $spec == *@* ]] && scope=${spec#*@}
    [[ $role == projects/* ]] || role=roles/$role
    case $scope in
      "") project_binding "$name" "$role" --condition=None ;;
      central)
        project_binding "$name" "$role" \
          --condition="expression=resource.name == \"$dataset\" || resource.name.startsWith(\"$dataset/\"),title=$CENTRAL_DATASET only" ;;
      tenant-datasets)
        project_binding "$name" "$role" \
          --condition="expression=resource.name != \"$dataset\" && !resource.name.startsWith(\"$dataset/\"),title=not $CENTRAL_DATASET" ;;
      key)
        run_iam gcloud kms keys add-iam-policy-binding "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" \
          --member="serviceAccount:$(sa_email "$name")" --role="$role" --project="$PROJECT" --format=none ;;
      topic:*)
        run_iam gcloud pubsub topics add-iam-policy-binding "${scope#topic:}" --member="serviceAccount:$(sa_email "$name")" \
          --role="$role" --project="$PROJECT" --format=none ;;
      *) die "unknown role scope in '$spec' of $name" ;;
    esac
  done
}

note "roles of each function, from what its handler touches"
for line in "${HTTP_TABLE[@]}"; do
  read -r name _ grants <<<"$line"
  read -ra specs <<<"$grants"
  grant "$name" "${specs[@]+"${specs[@]}"}"
done
# Steps: the state document and processed events; the roles its declaration names; the topics of the steps
# it may release (the last prerequisite publishes them); its dead-letter topic, for a message that can never succeed.
for index in "${!STEPS[@]}"; do
  name=step_${STEPS[$index]}
  read -ra specs <<<"${STEP_GRANTS[$index]}"
  grant "$name" datastore.user "${specs[@]+"${specs[@]}"}"
  if [[ ${STEP_RELEASES[$index]} != - ]]; then
    IFS=, read -ra released <<<"${STEP_RELEASES[$index]}"
    for topic in "${released[@]}"; do
      grant "$name" "pubsub.publisher@topic:$topic"
    done
  fi
  grant "$name" "pubsub.publisher@topic:${STEP_TOPICS[$index]}-dead-letter"
done
# step_dead_letter (one deployment per dead-letter topic, one account): marks the step and the tenant FAILED.
grant step_dead_letter datastore.user
# billing_event: tenant, API key, processed-event and audit documents in one transaction; appends the tenant's
# profile, subscription and quota rows to the central tables (insertAll: no job); announces on tenant-lifecycle;
# a message that can never apply goes straight to its dead-letter topic.
grant billing_event datastore.user bigquery.dataEditor@central \
  "pubsub.publisher@topic:$TOPIC_LIFECYCLE" "pubsub.publisher@topic:$BILLING_DEAD_LETTER"
# billing_dead_letter: keeps the message in billing_dead_letters.
grant billing_dead_letter datastore.user
# pipeline_run_result: as pipeline_results_http; a report of no known run goes straight to its dead-letter topic.
grant pipeline_run_result datastore.user bigquery.dataEditor@central "pubsub.publisher@topic:$RUN_RESULTS_DEAD_LETTER"
# pipeline_result_dead_letter: keeps the report among the dead letters.
grant pipeline_result_dead_letter datastore.user
# purge_expired: as purge_expired_http (PURGE_GRANTS).
read -ra specs <<<"$PURGE_GRANTS"
grant purge_expired "${specs[@]}"
# reconcile_steps: the outbox relay; publishes the step commands and admitted runs left in the outbox and deletes them.
read -ra specs <<<"$STEP_PUBLISHERS"
grant reconcile_steps datastore.user "${specs[@]}" "pubsub.publisher@topic:$TOPIC_PIPELINE_RUNS"
# sweep_expired_records: deletes documents past their expire_at; times out pipeline runs whose lease ended
# (run and tenant documents) and appends their usage rows and runs to the central tables.
grant sweep_expired_records datastore.user bigquery.dataEditor@central
# Builds: Cloud Build pushes each function's image to Artifact Registry and writes build logs.
grant build cloudbuild.builds.builder
# Push deliveries carry an OIDC token of the trigger account, minted by the Pub/Sub service agent.
run_iam gcloud iam service-accounts add-iam-policy-binding "$TRIGGER_SA" --member="$PUBSUB_AGENT" \
  --role=roles/iam.serviceAccountTokenCreator --project="$PROJECT" --format=none

# ---------------------------------------------------------------- BigQuery

note "central BigQuery dataset and tables (the project's bootstrap command, with your application default credentials)"
run env ONBOARDING_BACKEND=gcp ONBOARDING_ENV=production GOOGLE_CLOUD_PROJECT="$PROJECT" ONBOARDING_GCP_REGION="$REGION" \
  ONBOARDING_CENTRAL_DATASET="$CENTRAL_DATASET" ONBOARDING_BIGQUERY_LOCATION="$BQ_LOCATION" ONBOARDING_KMS_KEY_NAME="$KMS_KEY" \
  "$PYTHON" -m shared.bootstrap

# ---------------------------------------------------------------- the front door: API Gateway

# One public URL for every HTTP route. The gateway checks operators' Google ID tokens (issuer,
# signature, audience) and calls each function as its own service account, the functions'
# only invoker; each function checks the caller's token again (X-Forwarded-Authorization) and
# its email against the operator list. The config is generated from the route table; an API
# config cannot change once created, so its id carries a hash of its content.
# https://cloud.google.com/api-gateway/docs/creating-api-config
note "API Gateway $GATEWAY_ID (API $API_ID): every HTTP route, Google ID tokens checked on operator routes"
"$PYTHON" -m scripts.api_config --project="$PROJECT" --region="$REGION" --audience="$OPERATOR_AUDIENCE" \
  --audience="$GCLOUD_USER_AUDIENCE" --output="$API_CONFIG_FILE" >/dev/null
API_CONFIG_ID=$API_ID-$("$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:12])' "$API_CONFIG_FILE")
exists gcloud api-gateway apis describe "$API_ID" --project="$PROJECT" ||
  run gcloud api-gateway apis create "$API_ID" --display-name="tenant onboarding" --project="$PROJECT"
exists gcloud api-gateway api-configs describe "$API_CONFIG_ID" --api="$API_ID" --project="$PROJECT" ||
  run gcloud api-gateway api-configs create "$API_CONFIG_ID" --api="$API_ID" --openapi-spec="$API_CONFIG_FILE" \
    --backend-auth-service-account="$GATEWAY_SA" --project="$PROJECT"
if exists gcloud api-gateway gateways describe "$GATEWAY_ID" --location="$REGION" --project="$PROJECT"; then
  run gcloud api-gateway gateways update "$GATEWAY_ID" --api="$API_ID" --api-config="$API_CONFIG_ID" --location="$REGION" \
    --project="$PROJECT"
else
  run gcloud api-gateway gateways create "$GATEWAY_ID" --api="$API_ID" --api-config="$API_CONFIG_ID" --location="$REGION" \
    --project="$PROJECT"
fi
GATEWAY_HOST=$(lookup '<gateway-host>' gcloud api-gateway gateways describe "$GATEWAY_ID" --location="$REGION" \
  --format='value(defaultHostname)' --project="$PROJECT")
PUBLIC_URL=https://$GATEWAY_HOST
# Location and status_url point at the gateway: the functions learn its URL from their environment.
"$PYTHON" -m scripts.deploy_config --project="$PROJECT" --region="$REGION" --bigquery-location="$BQ_LOCATION" \
  --env-file="$ENV_FILE" --public-base-url="$PUBLIC_URL" --operator-audience="$OPERATOR_AUDIENCE" \
  --operator-audience="$GCLOUD_USER_AUDIENCE" ${OPERATORS[@]+"${OPERATORS[@]/#/--operator=}"} >/dev/null

# ---------------------------------------------------------------- functions

deploy_function() {
  local name=$1 entry_point=$2 sa_name=$3
  shift 3
  run gcloud functions deploy "$name" --gen2 --runtime=python312 --region="$REGION" --source="$SOURCE_DIR" \
    --entry-point="$entry_point" --service-account="$(sa_email "$sa_name")" \
    --build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_SA" \
    --env-vars-file="$ENV_FILE" --memory=512Mi --project="$PROJECT" "$@"
}

# An event function: the trigger account may invoke it; its Eventarc subscription gets the retry and dead-letter policy.
wire_event_function() {
  local name=$1 dead_letter_topic=${2:-} trigger subscription
  run_iam gcloud functions add-invoker-policy-binding "$name" --region="$REGION" \
    --member="serviceAccount:$TRIGGER_SA" --project="$PROJECT" --format=none
  [[ -n $dead_letter_topic ]] || return 0
  trigger=$(lookup "<eventarc-trigger-of-$name>" gcloud functions describe "$name" --region="$REGION" \
    --format='value(eventTrigger.trigger)' --project="$PROJECT")
  subscription=$(lookup "<eventarc-subscription-of-$name>" gcloud eventarc triggers describe "$trigger" \
    --location="$REGION" --format='value(transport.pubsub.subscription)' --project="$PROJECT")
  run gcloud pubsub subscriptions update "$subscription" \
    --dead-letter-topic="projects/$PROJECT/topics/$dead_letter_topic" \
    --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" --min-retry-delay=10s --max-retry-delay=600s --project="$PROJECT"
  # Dead-lettering acknowledges the message on the source subscription as the Pub/Sub service agent.
  run_iam gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --member="$PUBSUB_AGENT" \
    --role=roles/pubsub.subscriber --project="$PROJECT" --format=none
}

note "HTTP functions: the gateway's account is their only invoker"
for line in "${HTTP_TABLE[@]}"; do
  read -r name timeout _ <<<"$line"
  deploy_function "$name" "$name" "$name" --trigger-http --no-allow-unauthenticated --timeout="$timeout"
  run_iam gcloud functions add-invoker-policy-binding "$name" --region="$REGION" --member="serviceAccount:$GATEWAY_SA" \
    --project="$PROJECT" --format=none
done

note "step functions, one per step topic, retried then dead-lettered after $MAX_DELIVERY_ATTEMPTS deliveries"
for step in "${STEPS[@]}"; do
  topic=$(step_topic "$step")
  deploy_function "step_$step" "step_$step" "step_$step" --trigger-topic="$topic" --retry \
    --trigger-service-account="$TRIGGER_SA" --timeout=300s
  wire_event_function "step_$step" "$topic-dead-letter"
done

note "dead-letter functions: step_dead_letter on each dead-letter topic"
for step in "${STEPS[@]}"; do
  deploy_function "step_dead_letter_$step" step_dead_letter step_dead_letter \
    --trigger-topic="$(step_topic "$step")-dead-letter" --retry --trigger-service-account="$TRIGGER_SA" --timeout=60s
  wire_event_function "step_dead_letter_$step"
done

note "billing: billing_event on $TOPIC_BILLING, retried then dead-lettered; billing_dead_letter on $BILLING_DEAD_LETTER"
deploy_function billing_event billing_event billing_event --trigger-topic="$TOPIC_BILLING" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=300s
wire_event_function billing_event "$BILLING_DEAD_LETTER"
deploy_function billing_dead_letter billing_dead_letter billing_dead_letter --trigger-topic="$BILLING_DEAD_LETTER" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=60s
wire_event_function billing_dead_letter

note "pipeline runs: pipeline_run_result on $TOPIC_RUN_RESULTS, retried then dead-lettered; pipeline_result_dead_letter on $RUN_RESULTS_DEAD_LETTER"
deploy_function pipeline_run_result pipeline_run_result pipeline_run_result --trigger-topic="$TOPIC_RUN_RESULTS" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=60s
wire_event_function pipeline_run_result "$RUN_RESULTS_DEAD_LETTER"
deploy_function pipeline_result_dead_letter pipeline_result_dead_letter pipeline_result_dead_letter \
  --trigger-topic="$RUN_RESULTS_DEAD_LETTER" --retry --trigger-service-account="$TRIGGER_SA" --timeout=60s
wire_event_function pipeline_result_dead_letter

note "purge: purge_expired on $TOPIC_PURGE, published daily ($PURGE_SCHEDULE UTC) by Cloud Scheduler"
deploy_function purge_expired purge_expired purge_expired --trigger-topic="$TOPIC_PURGE" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=540s
wire_event_function purge_expired
# Cloud Scheduler publishes as its own service agent, which may publish to any topic of the project.
schedule_topic() {
  local job=$1 schedule=$2 topic=$3 description=$4 verb=create
  exists gcloud scheduler jobs describe "$job" --location="$REGION" --project="$PROJECT" && verb=update
  run gcloud scheduler jobs "$verb" pubsub "$job" --location="$REGION" --schedule="$schedule" \
    --time-zone=Etc/UTC --topic="projects/$PROJECT/topics/$topic" --message-body="{\"job\": \"$job\"}" \
    --description="$description" --project="$PROJECT" --format=none
}
schedule_topic "$PURGE_JOB" "$PURGE_SCHEDULE" "$TOPIC_PURGE" "Purge offboarded tenants past their retention"

note "reconciler: reconcile_steps on $TOPIC_RECONCILE, published every 5 minutes by Cloud Scheduler"
deploy_function reconcile_steps reconcile_steps reconcile_steps --trigger-topic="$TOPIC_RECONCILE" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=300s
wire_event_function reconcile_steps
schedule_topic "$RECONCILE_JOB" "$RECONCILE_SCHEDULE" "$TOPIC_RECONCILE" "Republish provisioning steps stranded by a crash"

note "sweeper: sweep_expired_records on $TOPIC_SWEEP, published every hour by Cloud Scheduler"
deploy_function sweep_expired_records sweep_expired_records sweep_expired_records --trigger-topic="$TOPIC_SWEEP" --retry \
  --trigger-service-account="$TRIGGER_SA" --timeout=540s
wire_event_function sweep_expired_records
schedule_topic "$SWEEP_JOB" "$SWEEP_SCHEDULE" "$TOPIC_SWEEP" "Delete records past their expire_at"

# ---------------------------------------------------------------- log-based metrics and the dead-letter alert

# Each function instance counts for itself, so on Google Cloud the figures come from the JSON log
# lines of every instance: log-based metrics, and an alert on the open dead letters the reconciler
# logs on every pass. Files generated by scripts/observability_config.py from the code's log lines.
# https://cloud.google.com/logging/docs/logs-based-metrics/distribution-metrics
OBSERVABILITY_DIR=.deploy/$PROJECT/observability
mapfile -t LOG_METRICS < <("$PYTHON" -m scripts.observability_config "$OBSERVABILITY_DIR")
note "log-based metrics: ${LOG_METRICS[*]}; alert policy on onboarding_dead_letter_backlog"
for metric in "${LOG_METRICS[@]}"; do
  verb=create
  exists gcloud logging metrics describe "$metric" --project="$PROJECT" && verb=update
  run gcloud logging metrics "$verb" "$metric" --config-from-file="$OBSERVABILITY_DIR/metrics/$metric.json" --project="$PROJECT"
done
# Policies have generated ids: found by display name, updated in place, else created.
# (alpha: the release track every gcloud that has these commands carries)
# https://cloud.google.com/sdk/gcloud/reference/alpha/monitoring/policies/create
ALERT_POLICY=$(lookup '' gcloud alpha monitoring policies list --filter='displayName="Onboarding: open dead letters"' \
  --format='value(name)' --project="$PROJECT")
if [[ -n $ALERT_POLICY ]]; then
  run gcloud alpha monitoring policies update "$ALERT_POLICY" --policy-from-file="$OBSERVABILITY_DIR/alert-policy.json" --project="$PROJECT"
else
  run gcloud alpha monitoring policies create --policy-from-file="$OBSERVABILITY_DIR/alert-policy.json" --project="$PROJECT"
fi

if ((DRY_RUN)); then
  note "dry run finished: nothing was created"
else
  note "done: the API is at $PUBLIC_URL (see README, 'Calling the deployed API')"
fi
