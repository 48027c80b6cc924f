// Browser-like users through the edge: each virtual user is one person with
// the web app open. It loads the page (index.html and its assets, which the
// edge caches), holds a Socket.IO connection (wss) joined to its project,
// and every few seconds of think time does what the board does — lists the
// tasks, opens one, asks for the next task, or edits one (10 %). Every edit
// is stamped, so every subscriber of the project measures message latency
// (PATCH sent → event received) and checks that seqs arrive without gaps.
//
//   SSL_CERT_FILE=target/cluster/edge/tls/cert.pem \
//   k6 run -e BASE_URL=https://localhost:8443 -e VUS=1000 -e DURATION=60s loadtest/k6/edge-users.js
//
// (k6 trusts SSL_CERT_FILE, the edge's self-signed certificate on a local
// cluster.) The set-up signs up USERS users: run the cluster with raised
// sign-in limits (loadtest/edge-bench.sh does).
import http from 'k6/http';
import ws from 'k6/ws';
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'https://localhost:8443';
const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
const VUS = parseInt(__ENV.VUS || '1000', 10);
const DURATION = __ENV.DURATION || '60s';
const USERS = parseInt(__ENV.USERS || '50', 10);
const PROJECTS = parseInt(__ENV.PROJECTS || '20', 10);
const TASKS = parseInt(__ENV.TASKS || '100', 10);
const THINK = parseFloat(__ENV.THINK || '2');
const WRITE_SHARE = parseFloat(__ENV.WRITE_SHARE || '0.1');
// Users arrive over RAMP seconds, as they do in the morning, not all in one
// instant; each stays DURATION seconds.
const RAMP = parseFloat(__ENV.RAMP || '20');

const messageLatency = new Trend('message_latency', true);
const joined = new Rate('joined');
const seqGaps = new Counter('seq_gaps');
const eventsReceived = new Counter('events_received');
const failures = new Counter('failed_requests');

const seconds = (text) => parseInt(text, 10) * (text.endsWith('m') ? 60 : 1);

export const options = {
  scenarios: {
    users: {
      executor: 'per-vu-iterations', vus: VUS, iterations: 1,
      maxDuration: `${seconds(DURATION) + RAMP + 120}s`,
    },
  },
  setupTimeout: '300s',
  // Judged once everyone has arrived (phase "steady"); the arrival
  // (phase "ramp": page loads, TLS handshakes, joins) is reported beside it.
  thresholds: {
    joined: ['rate>0.999'],
    'message_latency{phase:steady}': ['p(95)<100'],
    'message_latency{phase:ramp}': ['max>=0'],
    seq_gaps: ['count==0'],
    failed_requests: ['count==0'],
    // The seed's criteria: cached reads under 50 ms, uncached under 200 ms.
    'http_req_duration{kind:task,phase:steady}': ['p(95)<50'],
    'http_req_duration{kind:list,phase:steady}': ['p(95)<200'],
    'http_req_duration{kind:next,phase:steady}': ['p(95)<200'],
    'http_req_duration{kind:patch,phase:steady}': ['p(95)<200'],
    'http_req_duration{kind:task,phase:ramp}': ['max>=0'],
    'http_req_duration{kind:page}': ['p(95)<200'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

function json(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return http.request(method, `${BASE_URL}${path}`, body === null ? null : JSON.stringify(body),
    { headers, tags: { kind: 'setup' } });
}

export function setup() {
  const run = Date.now();
  const owner = json('POST', '/api/v1/auth/register',
    { email: `edge-owner-${run}@load.test`, name: 'owner', password: 'load test password' });
  if (owner.status !== 201) fail(`register owner: ${owner.status} ${owner.body}`);
  const ownerToken = owner.json('token');
  const users = [];
  for (let n = 0; n < USERS; n++) {
    const user = json('POST', '/api/v1/auth/register',
      { email: `edge-${n}-${run}@load.test`, name: `user ${n}`, password: 'load test password' });
    if (user.status !== 201) fail(`register: ${user.status} ${user.body}`);
    users.push({ token: user.json('token'), email: user.json('user.email') });
  }
  const projects = [];
  for (let p = 0; p < PROJECTS; p++) {
    const project = json('POST', '/api/v1/projects', { name: `edge ${p}` }, ownerToken);
    if (project.status !== 201) fail(`project: ${project.status}`);
    const id = project.json('id');
    for (let t = 0; t < TASKS; t++) {
      const task = json('POST', `/api/v1/projects/${id}/tasks`,
        { title: `task ${t}`, priority: ['high', 'medium', 'low'][t % 3] }, ownerToken);
      if (task.status !== 201) fail(`task: ${task.status}`);
    }
    for (const user of users) {
      const member = json('POST', `/api/v1/projects/${id}/members`, { email: user.email, role: 'editor' }, ownerToken);
      if (member.status !== 201) fail(`member: ${member.status} ${member.body}`);
    }
    projects.push(id);
  }
  console.log('setup done');
  return { tokens: users.map((u) => u.token), projects };
}

// "ramp" until every user has arrived (RAMP seconds, plus the page load and
// the join), "steady" after.
function phase() {
  return (Date.now() - exec.scenario.startTime) / 1000 < RAMP + 5 ? 'ramp' : 'steady';
}

// One board action with its kind as the tag the thresholds read.
function act(token, project) {
  const tags = { kind: '', phase: phase() };
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const task = 1 + Math.floor(Math.random() * TASKS);
  const roll = Math.random();
  let kind;
  let response;
  if (roll < WRITE_SHARE) {
    kind = tags.kind = 'patch';
    response = http.patch(`${BASE_URL}/api/v1/projects/${project}/tasks/${task}`,
      JSON.stringify({ title: `k6 ${Date.now()} ${__VU}` }), { headers, tags });
  } else if (roll < WRITE_SHARE + 0.4) {
    kind = tags.kind = 'list';
    response = http.get(`${BASE_URL}/api/v1/projects/${project}/tasks?limit=50`, { headers, tags });
  } else if (roll < WRITE_SHARE + 0.8) {
    kind = tags.kind = 'task';
    response = http.get(`${BASE_URL}/api/v1/projects/${project}/tasks/${task}`, { headers, tags });
  } else {
    kind = tags.kind = 'next';
    response = http.get(`${BASE_URL}/api/v1/projects/${project}/tasks/next`, { headers, tags });
  }
  // A failed request is one the user saw fail (a 429 or 503 the app retries
  // is still counted: the run must not need them).
  if (!check(response, { [`${kind} ok`]: (r) => r.status >= 200 && r.status < 300 })) failures.add(1);
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const project = data.projects[(__VU - 1) % data.projects.length];
  // One browser: its own route cookie, for the page and the socket alike.
  const route = `k6vu${__VU}`;
  http.cookieJar().set(BASE_URL, 'tm_route', route);
  sleep((RAMP * (__VU - 1)) / VUS);

  // The page load: the shell and its assets (cached at the edge).
  const page = http.get(`${BASE_URL}/`, { tags: { kind: 'page' } });
  if (!check(page, { 'page 200': (r) => r.status === 200 })) failures.add(1);
  for (const asset of (page.body || '').matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    http.get(`${BASE_URL}${asset[1]}`, { tags: { kind: 'asset' } });
  }
  sleep(Math.random() * 2);

  let last = null;
  const response = ws.connect(WS_URL, { headers: { Cookie: `tm_route=${route}` } }, (socket) => {
    socket.on('message', (message) => {
      if (message === '2') { socket.send('3'); return; }
      if (message.startsWith('0')) { socket.send('40' + JSON.stringify({ token })); return; }
      if (message.startsWith('40')) { socket.send('421' + JSON.stringify(['join', { project_id: project }])); return; }
      if (message.startsWith('431')) {
        const ack = JSON.parse(message.slice(3))[0];
        joined.add(ack.ok === true);
        last = ack.seq;
        const think = () => {
          act(token, project);
          socket.setTimeout(think, THINK * 1000 * (0.5 + Math.random()));
        };
        socket.setTimeout(think, THINK * 1000 * Math.random());
        return;
      }
      if (message.startsWith('42')) {
        const [name, event] = JSON.parse(message.slice(2));
        if (name !== 'event') return;
        eventsReceived.add(1);
        if (last !== null && event.seq !== last + 1) seqGaps.add(1);
        last = event.seq;
        const stamp = /^k6 (\d+)/.exec(event.task.title);
        if (stamp) messageLatency.add(Date.now() - parseInt(stamp[1], 10), { phase: phase() });
      }
    });
    socket.on('error', () => failures.add(1));
    socket.setTimeout(() => socket.close(), seconds(DURATION) * 1000);
  });
  check(response, { 'websocket upgraded': (r) => r && r.status === 101 });
}
