// Socket.IO over WebSocket with k6: clients join a project and measure the
// time from a PATCH being sent to its event arriving, while a writer scenario
// changes tasks. (k6 costs megabytes per virtual user; for tens of thousands
// of connections use the Rust generator in loadtest/generator.)
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e CLIENTS=200 -e RATE=50 -e DURATION=30s loadtest/k6/socketio.js
//
// The server must allow the set-up's sign-ups: LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000.
import http from 'k6/http';
import ws from 'k6/ws';
import { check, fail } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
const CLIENTS = parseInt(__ENV.CLIENTS || '200', 10);
const RATE = parseInt(__ENV.RATE || '50', 10);
const DURATION = __ENV.DURATION || '30s';
const PROJECTS = parseInt(__ENV.PROJECTS || '10', 10);

const deliveryLatency = new Trend('delivery_latency', true);
const joined = new Rate('joined');
const gaps = new Counter('seq_gaps');
const events = new Counter('events_received');

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations', vus: CLIENTS, iterations: 1, maxDuration: '10m',
      exec: 'subscriber',
    },
    writers: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: 20, startTime: '5s', exec: 'writer',
    },
  },
  thresholds: {
    joined: ['rate>0.99'],
    delivery_latency: ['p(95)<100'],
    seq_gaps: ['count==0'],
    'http_req_failed{scenario:writers}': ['rate<0.01'],
  },
};

function post(path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body), { headers });
}

export function setup() {
  const run = Date.now();
  const owner = post('/api/v1/auth/register', { email: `k6-owner-${run}@example.com`, name: 'owner', password: 'load test password' });
  if (owner.status !== 201) fail(`register: ${owner.status} ${owner.body}`);
  const token = owner.json('token');
  const projects = [];
  for (let i = 0; i < PROJECTS; i++) {
    const project = post('/api/v1/projects', { name: `k6 ${i}` }, token);
    if (project.status !== 201) fail(`project: ${project.status}`);
    const id = project.json('id');
    post(`/api/v1/projects/${id}/tasks`, { title: 'target' }, token);
    projects.push(id);
  }
  return { token, projects };
}

export function subscriber(data) {
  const project = data.projects[(__VU - 1) % data.projects.length];
  let last = null;
  const seconds = parseInt(DURATION, 10) + 10;
  const response = ws.connect(WS_URL, {}, (socket) => {
    socket.on('message', (message) => {
      if (message === '2') { socket.send('3'); return; }
      if (message.startsWith('0')) { socket.send('40' + JSON.stringify({ token: data.token })); return; }
      if (message.startsWith('40')) { socket.send('421' + JSON.stringify(['join', { project_id: project }])); return; }
      if (message.startsWith('431')) {
        const ack = JSON.parse(message.slice(3))[0];
        joined.add(ack.ok === true);
        last = ack.seq;
        return;
      }
      if (message.startsWith('42')) {
        const [name, event] = JSON.parse(message.slice(2));
        if (name !== 'event') return;
        events.add(1);
        if (last !== null && event.seq !== last + 1) gaps.add(1);
        last = event.seq;
        const stamp = /^k6 (\d+)/.exec(event.task.title);
        if (stamp) deliveryLatency.add(Date.now() - parseInt(stamp[1], 10));
      }
    });
    socket.setTimeout(() => socket.close(), seconds * 1000);
  });
  check(response, { 'websocket upgraded': (r) => r && r.status === 101 });
}

export function writer(data) {
  const project = data.projects[Math.floor(Math.random() * data.projects.length)];
  const response = http.patch(`${BASE_URL}/api/v1/projects/${project}/tasks/1`,
    JSON.stringify({ title: `k6 ${Date.now()} ${__VU}-${__ITER}` }),
    { headers: { Authorization: `Bearer ${data.token}`, 'Content-Type': 'application/json' } });
  check(response, { 'patch 200': (r) => r.status === 200 });
}
