// The operators' console: signs in with the API's bearer token and polls the operator routes.
// Everything is built with DOM calls and textContent: no markup is ever made from data.
"use strict";

const TOKEN_KEY = "onboarding.operatorToken";
const POLL_MS = 2000;
let timer = null;
let auditTenant = null;

const $ = (selector) => document.querySelector(selector);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function say(text, info = false) {
  const message = $("#message");
  message.textContent = text;
  message.className = info ? "info" : "";
}

async function call(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (response.status === 401) {
    signOut("The token was refused: sign in again.");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    const detail = body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`;
    throw new Error(detail);
  }
  return body;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(label, action, name) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.dataset.action = name;
  element.addEventListener("click", action);
  return element;
}

function renderTenants(tenants) {
  const body = $("#tenants tbody");
  body.replaceChildren();
  for (const tenant of tenants) {
    const row = document.createElement("tr");
    row.dataset.tenant = tenant.tenant_id;
    row.dataset.status = tenant.status;
    cell(row, tenant.tenant_id);
    cell(row, tenant.subscription_plan);
    cell(row, tenant.status, `status status-${tenant.status}`);
    const steps = cell(row, "");
    for (const step of tenant.steps || []) {
      const span = document.createElement("span");
      span.className = `step step-${step.status}`;
      span.dataset.step = step.name;
      span.textContent = `${step.name}: ${step.status}` + (step.attempts > 1 ? ` (${step.attempts} attempts)` : "");
      steps.appendChild(span);
    }
    cell(row, tenant.error, "error");
    const actions = cell(row, "");
    actions.appendChild(button("Audit trail", () => showAudit(tenant.tenant_id), "audit"));
    if (tenant.status === "FAILED") {
      actions.appendChild(button("Retry", () => retry(tenant.tenant_id), "retry"));
    }
    body.appendChild(row);
  }
}

function renderDeadLetters(letters) {
  const body = $("#dead-letters tbody");
  body.replaceChildren();
  for (const letter of letters) {
    const row = document.createElement("tr");
    row.dataset.deadLetter = letter.id;
    row.dataset.tenant = letter.tenant_id || "";
    cell(row, letter.tenant_id);
    cell(row, letter.step);
    cell(row, letter.reason, "error");
    cell(row, letter.attempts);
    cell(row, letter.dead_lettered_at);
    const actions = cell(row, "");
    if (letter.tenant_id) {
      actions.appendChild(button("Retry", () => retry(letter.tenant_id), "retry"));
    }
    body.appendChild(row);
  }
}

function renderEvents(events) {
  const body = $("#events tbody");
  body.replaceChildren();
  for (const event of events) {
    const row = document.createElement("tr");
    row.dataset.event = event.event_id;
    cell(row, event.occurred_at);
    cell(row, event.type + (event.new_plan ? ` → ${event.new_plan}` : ""));
    cell(row, event.outcome);
    cell(row, event.status_before && event.status_after ? `${event.status_before} → ${event.status_after}` : "");
    cell(row, event.plan_before && event.plan_after ? `${event.plan_before} → ${event.plan_after}` : "");
    cell(row, event.detail);
    body.appendChild(row);
  }
}

async function refresh() {
  // Each panel on its own: one route failing leaves the others current.
  const panels = [
    call("GET", "/api/v1/tenants?limit=100").then((page) => renderTenants(page.tenants)),
    call("GET", "/api/v1/dead-letters?status=OPEN&limit=100").then((page) => renderDeadLetters(page.dead_letters)),
  ];
  if (auditTenant) {
    const path = `/api/v1/tenants/${encodeURIComponent(auditTenant)}/events?limit=100`;
    panels.push(call("GET", path).then((trail) => renderEvents(trail.events)));
  }
  const failures = (await Promise.allSettled(panels))
    .filter((result) => result.status === "rejected" && result.reason.message !== "unauthorized")
    .map((result) => result.reason.message);
  $("#refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  if (failures.length) {
    say(`Refresh failed: ${failures.join("; ")}`);
  } else if ($("#message").className !== "info") {
    say("");
  }
}

async function retry(tenantId) {
  try {
    const accepted = await call("POST", `/api/v1/tenants/${encodeURIComponent(tenantId)}/retry`);
    say(`${tenantId}: ${accepted.message}`, true);
  } catch (error) {
    if (error.message !== "unauthorized") say(`Retry of ${tenantId} failed: ${error.message}`);
  }
  await refresh();
}

async function showAudit(tenantId) {
  auditTenant = tenantId;
  $("#audit-tenant").textContent = tenantId;
  $("#audit").hidden = false;
  await refresh();
}

function start() {
  $("#sign-in").hidden = true;
  $("#signed-in").hidden = false;
  $("#content").hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  timer = null;
  $("#sign-in").hidden = false;
  $("#signed-in").hidden = true;
  $("#content").hidden = true;
  say(reason || "");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("#token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("#token").value = "";
    say("");
    start();
  });
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  if (token()) start();
});
