//! `GET /demo`: a small EHR page that acts as a terminal — start a login,
//! show the QR and the number to match, wait for the phone, then sign the
//! SHA-256 of a sample prescription through the CSC API. Mounted only with
//! `--demo`; the seeded terminal's client id is filled in, its secret never
//! (a page must not hand a terminal credential to whoever loads it: the
//! person at the demo types the secret `serve --demo` printed once).

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;

use super::HttpState;

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/demo", get(page))
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '&' => "&amp;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

async fn page(State(s): State<HttpState>) -> Html<String> {
    let id = s.demo.as_ref().map(|d| d.client_id.clone()).unwrap_or_default();
    Html(
        PAGE.replace("{{CLIENT_ID}}", &escape(&id))
            .replace("{{ATTESTATION}}", &escape(&crate::demo::attestation_note(&s.app.policy.attestation))),
    )
}

const PAGE: &str = r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>Shomei EHR demo</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto}#qr svg{width:300px;height:300px}
#num{font-size:3em;font-weight:bold}pre{background:#eee;padding:.5em;white-space:pre-wrap;word-break:break-all}</style></head>
<body><h1>署名 Shomei — EHR demo terminal</h1>
<p><label>client_id <input id="cid" size="40" value="{{CLIENT_ID}}"></label><br>
<label>client_secret <input id="csec" type="password" size="50" autocomplete="off" placeholder="printed once by shomei serve --demo"></label></p>
<p id="attestation"><small>{{ATTESTATION}}</small></p>
<button id="start">Start login</button>
<div id="qr"></div><div>Number to choose on the phone: <span id="num">--</span></div>
<p>Status: <b id="status">idle</b></p>
<textarea id="rx" rows="4" cols="70">Rp1 アムロジピン錠5mg 1錠 1日1回朝食後 14日分</textarea><br>
<button id="sign" disabled>Sign prescription</button><pre id="out"></pre>
<script>
const $ = id => document.getElementById(id);
let token = null;
const basic = () => 'Basic ' + btoa($('cid').value.trim() + ':' + $('csec').value.trim());
const b64 = buf => btoa(String.fromCharCode(...new Uint8Array(buf)));
async function start() {
  $('status').textContent = 'starting'; $('out').textContent = ''; token = null; $('sign').disabled = true;
  const r = await fetch('/oauth/device_authorization', {method: 'POST', headers: {Authorization: basic(),
    'Content-Type': 'application/x-www-form-urlencoded'}, body: ''});
  const d = await r.json();
  if (!r.ok) { $('status').textContent = 'error: ' + JSON.stringify(d); return; }
  $('num').textContent = d.match_number;
  const svg = await fetch('/v1/terminal/logins/' + d.login_id + '/qr.svg', {headers: {Authorization: basic()}});
  $('qr').innerHTML = await svg.text();
  $('status').textContent = 'waiting for the phone';
  let st = 'pending';
  while (st === 'pending') {
    const w = await fetch('/v1/terminal/logins/' + d.login_id + '/wait?timeout=30', {headers: {Authorization: basic()}});
    st = (await w.json()).status;
  }
  $('status').textContent = st; $('qr').innerHTML = '';
  if (st !== 'approved') return;
  const t = await fetch('/oauth/token', {method: 'POST', headers: {Authorization: basic(),
    'Content-Type': 'application/x-www-form-urlencoded'},
    body: 'grant_type=' + encodeURIComponent('urn:ietf:params:oauth:grant-type:device_code') + '&device_code=' + encodeURIComponent(d.device_code)});
  const tok = await t.json();
  if (!t.ok) { $('status').textContent = 'token error: ' + JSON.stringify(tok); return; }
  token = tok.access_token; $('status').textContent = 'approved — grant ' + tok.grant_id; $('sign').disabled = false;
}
async function csc(path, body) {
  const r = await fetch('/csc/v2/' + path, {method: 'POST', headers: {Authorization: 'Bearer ' + token,
    'Shomei-Terminal-Authorization': basic(), 'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const j = await r.json(); if (!r.ok) throw new Error(JSON.stringify(j)); return j;
}
async function sign() {
  try {
    const list = await csc('credentials/list', {});
    const cred = list.credentialIDs[0];
    const info = await csc('credentials/info', {credentialID: cred});
    const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode($('rx').value));
    const algo = info.key.algo[0];
    const s = await csc('signatures/signHash', {credentialID: cred, hashes: [b64(hash)],
      hashAlgorithmOID: '2.16.840.1.101.3.4.2.1', signAlgo: algo});
    $('out').textContent = 'signer: ' + info.cert.subjectDN + '\nSHA-256: ' + b64(hash) + '\nsignature: ' + s.signatures[0];
  } catch (e) { $('out').textContent = 'error: ' + e.message; }
}
$('start').onclick = start; $('sign').onclick = sign;
</script></body></html>"#;
