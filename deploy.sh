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
and every Cloud Function (2nd gen, Python 3.12).

Options:
  --project ID               Google Cloud project id (required)
  --region REGION            region of the functions, Firestore, KMS key (required), e.g. europe-west1
  --bigquery-location LOC    location of the BigQuery datasets (default: the region)
  --invoker MEMBER           may call the HTTP functions, e.g. group:ops@example.com (repeatable)
  --dry-run                  print every command, one per line after "+ ", and run none
  -h, --help                 this help

In --dry-run, gcloud is never called: each resource is assumed absent, so the plan
shows the describe check and the create it leads to; values known only after a
real call appear as <placeholders>. Only the functions' env-vars file is written.
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
INVOKERS=()
while (($#)); do
  case $1 in
    --project) PROJECT=${2:-}; shift 2 || die "--project needs a value" ;;
    --project=*) PROJECT=${1#*=}; shift ;;
    --region) REGION=${2:-}; shift 2 || die "--region needs a value" ;;
    --region=*) REGION=${1#*=}; shift ;;
    --bigquery-location) BQ_LOCATION=${2:-}; shift 2 || die "--bigquery-location needs a value" ;;
    --bigquery-location=*) BQ_LOCATION=${1#*=}; shift ;;
    --invoker) INVOKERS+=("${2:-}"); shift 2 || die "--invoker needs a value" ;;
    --invoker=*) INVOKERS+=("${1#*=}"); shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $PROJECT ]] || { usage >&2; die "--project is required"; }
[[ -n $REGION ]] || { usage >&2; die "--region is required"; }
[[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "not a project id: $PROJECT"
[[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "not a region: $REGION"
for member in "${INVOKERS[@]+"${INVOKERS[@]}"}"; do
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
  read -r TOPIC_SUBSCRIPTION
  read -r TOPIC_QUOTA
  read -r TOPIC_DATASET
  read -r TOPIC_VIEW
} <<<"$settings"
KMS_KEY=projects/$PROJECT/locations/$REGION/keyRings/$KEY_RING/cryptoKeys/$CRYPTO_KEY

HTTP_FUNCTIONS=(dryrun onboard_tenant tenant_status tenant_overview healthz)
STEPS=(subscription quota dataset view)
step_topic() {
  case $1 in
    subscription) printf '%s' "$TOPIC_SUBSCRIPTION" ;;
    quota) printf '%s' "$TOPIC_QUOTA" ;;
    dataset) printf '%s' "$TOPIC_DATASET" ;;
    view) printf '%s' "$TOPIC_VIEW" ;;
  esac
}
STEP_TOPICS=()
DEAD_LETTER_TOPICS=()
for step in "${STEPS[@]}"; do
  STEP_TOPICS+=("$(step_topic "$step")")
  DEAD_LETTER_TOPICS+=("$(step_topic "$step")-dead-letter")
done
TOPICS=("$TOPIC_VALIDATIONS" "${STEP_TOPICS[@]}" "$TOPIC_BILLING" "$TOPIC_LIFECYCLE")

# Service account ids: 6-30 characters, lowercase, digits and hyphens.
sa_email() {
  local id=$1
  printf 'onb-%s@%s.iam.gserviceaccount.com' "${id//_/-}" "$PROJECT"
}
TRIGGER_SA=$(sa_email trigger)
BUILD_SA=$(sa_email build)
SA_NAMES=("${HTTP_FUNCTIONS[@]}")
for step in "${STEPS[@]}"; do
  SA_NAMES+=("step_$step")
done
SA_NAMES+=(step_dead_letter trigger build)

FUNCTIONS=("${HTTP_FUNCTIONS[@]}")
for step in "${STEPS[@]}"; do
  FUNCTIONS+=("step_$step")
done
for step in "${STEPS[@]}"; do
  FUNCTIONS+=("step_dead_letter_$step")
done

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
  --project="$PROJECT"

PROJECT_NUMBER=$(lookup '<project-number>' gcloud projects describe "$PROJECT" --format='value(projectNumber)')
PUBSUB_AGENT=serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com

# ---------------------------------------------------------------- service accounts

note "service accounts: one per function, one for Eventarc triggers, one for builds"
for name in "${SA_NAMES[@]}"; do
  email=$(sa_email "$name")
  exists gcloud iam service-accounts describe "$email" --project="$PROJECT" ||
    run gcloud iam service-accounts create "${email%%@*}" --display-name="onboarding $name" --project="$PROJECT"
done

# ---------------------------------------------------------------- Firestore, KMS, Pub/Sub

note "Firestore (native mode) in $REGION"
exists gcloud firestore databases describe --database='(default)' --project="$PROJECT" ||
  run gcloud firestore databases create --database='(default)' --location="$REGION" --type=firestore-native --project="$PROJECT"

note "Cloud KMS key for API keys (symmetric, rotated every $ROTATION_PERIOD)"
exists gcloud kms keyrings describe "$KEY_RING" --location="$REGION" --project="$PROJECT" ||
  run gcloud kms keyrings create "$KEY_RING" --location="$REGION" --project="$PROJECT"
exists gcloud kms keys describe "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" --project="$PROJECT" ||
  run gcloud kms keys create "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" --purpose=encryption \
    --rotation-period="$ROTATION_PERIOD" --next-rotation-time="$NEXT_ROTATION" --project="$PROJECT"

note "Pub/Sub topics, and a dead-letter topic with a retained subscription per step topic"
for topic in "${TOPICS[@]}" "${DEAD_LETTER_TOPICS[@]}"; do
  exists gcloud pubsub topics describe "$topic" --project="$PROJECT" ||
    run gcloud pubsub topics create "$topic" --project="$PROJECT"
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

project_role() {
  local name=$1 role=$2
  run_iam gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$(sa_email "$name")" \
    --role="roles/$role" --condition=None --format=none
}

# BigQuery honours IAM conditions on resource.name: this grant reaches the central dataset only.
central_dataset_role() {
  local name=$1 role=$2 dataset=projects/$PROJECT/datasets/$CENTRAL_DATASET
  run_iam gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$(sa_email "$name")" \
    --role="roles/$role" --format=none \
    --condition="expression=resource.name == \"$dataset\" || resource.name.startsWith(\"$dataset/\"),title=$CENTRAL_DATASET only"
}

topic_role() {
  local name=$1 topic=$2 role=$3
  run_iam gcloud pubsub topics add-iam-policy-binding "$topic" --member="serviceAccount:$(sa_email "$name")" \
    --role="roles/$role" --project="$PROJECT" --format=none
}

note "roles of each function, from what its handler touches"
# dryrun: writes validations/{id}, reads tenants; SELECT 1; dataset and central-table metadata; publishes the validation.
project_role dryrun datastore.user
project_role dryrun bigquery.jobUser
project_role dryrun bigquery.metadataViewer
topic_role dryrun "$TOPIC_VALIDATIONS" pubsub.publisher
# onboard_tenant: tenant, API key and idempotency documents; encrypts (and on replay decrypts) the key; publishes three steps.
project_role onboard_tenant datastore.user
run_iam gcloud kms keys add-iam-policy-binding "$CRYPTO_KEY" --keyring="$KEY_RING" --location="$REGION" \
  --member="serviceAccount:$(sa_email onboard_tenant)" --role=roles/cloudkms.cryptoKeyEncrypterDecrypter \
  --project="$PROJECT" --format=none
for step in subscription quota dataset; do
  topic_role onboard_tenant "$(step_topic "$step")" pubsub.publisher
done
# tenant_status: reads tenants/{id}.
project_role tenant_status datastore.viewer
# tenant_overview: reads API keys and the tenant document; queries the tenant's view, which reads the central tables.
# Tenant datasets are created at run time, hence project-wide read.
project_role tenant_overview datastore.viewer
project_role tenant_overview bigquery.jobUser
project_role tenant_overview bigquery.dataViewer
# healthz touches nothing: its account has no role.
# Steps: state document, processed events; DML and DDL; the last prerequisite publishes the view step;
# a message that can never succeed goes straight to the step's dead-letter topic.
for step in "${STEPS[@]}"; do
  name=step_$step
  project_role "$name" datastore.user
  project_role "$name" bigquery.jobUser
  case $step in
    subscription | quota) central_dataset_role "$name" bigquery.dataEditor ;;
    # dataset creates tenant datasets (a project permission); view writes into them and into the central dataset.
    dataset | view) project_role "$name" bigquery.dataEditor ;;
  esac
  [[ $step == view ]] || topic_role "$name" "$TOPIC_VIEW" pubsub.publisher
  topic_role "$name" "$(step_topic "$step")-dead-letter" pubsub.publisher
done
# step_dead_letter (one deployment per dead-letter topic, one account): marks the step and the tenant FAILED.
project_role step_dead_letter datastore.user
# Builds: Cloud Build pushes each function's image to Artifact Registry and writes build logs.
project_role build cloudbuild.builds.builder
# Push deliveries carry an OIDC token of the trigger account, minted by the Pub/Sub service agent.
run_iam gcloud iam service-accounts add-iam-policy-binding "$TRIGGER_SA" --member="$PUBSUB_AGENT" \
  --role=roles/iam.serviceAccountTokenCreator --project="$PROJECT" --format=none

# ---------------------------------------------------------------- BigQuery

note "central BigQuery dataset and tables (the project's bootstrap command, with your application default credentials)"
run env ONBOARDING_BACKEND=gcp ONBOARDING_ENV=production GOOGLE_CLOUD_PROJECT="$PROJECT" ONBOARDING_GCP_REGION="$REGION" \
  ONBOARDING_CENTRAL_DATASET="$CENTRAL_DATASET" ONBOARDING_BIGQUERY_LOCATION="$BQ_LOCATION" ONBOARDING_KMS_KEY_NAME="$KMS_KEY" \
  "$PYTHON" -m shared.bootstrap

# ---------------------------------------------------------------- functions

deploy_function() {
  local name=$1 entry_point=$2 sa_name=$3
  shift 3
  run gcloud functions deploy "$name" --gen2 --runtime=python312 --region="$REGION" --source=. \
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

note "HTTP functions (authenticated callers only)"
for name in "${HTTP_FUNCTIONS[@]}"; do
  timeout=60s
  # onboard_tenant may wait up to http.max_wait_seconds for the outcome.
  [[ $name == onboard_tenant ]] && timeout=120s
  deploy_function "$name" "$name" "$name" --trigger-http --no-allow-unauthenticated --timeout="$timeout"
  for member in "${INVOKERS[@]+"${INVOKERS[@]}"}"; do
    run_iam gcloud functions add-invoker-policy-binding "$name" --region="$REGION" --member="$member" \
      --project="$PROJECT" --format=none
  done
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

if ((DRY_RUN)); then
  note "dry run finished: nothing was created"
else
  note "done: 'gcloud functions describe dryrun --region=$REGION --project=$PROJECT' shows its URL"
fi
