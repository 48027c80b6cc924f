// Drives official socket.io-client instances for the Rust integration tests.
//
// Reads one JSON command per line on stdin, writes one JSON line per thing
// that happened on stdout. Every line names the client it is about (`id`).
//
//   {"op":"connect","id":"a","url":"http://…","token":"…","transports":["websocket"],
//    "reconnection":false,"headers":{"cookie":"…"}}
//   {"op":"emit","id":"a","event":"join","data":{…},"tag":"t1"}   → {"id":"a","type":"ack","tag":"t1","data":…}
//   {"op":"drop","id":"a"}      close the transport under the client (a network drop)
//   {"op":"close","id":"a"}     a clean disconnect
import { io } from 'socket.io-client';
import readline from 'node:readline';

const clients = new Map();
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

function connect({ id, url, token, transports, reconnection, headers }) {
  const options = { transports: transports || ['websocket'], reconnection: !!reconnection, timeout: 10000 };
  if (headers) options.extraHeaders = headers;
  if (token !== undefined && token !== null) options.auth = { token };
  const socket = io(url, options);
  clients.set(id, socket);
  socket.on('connect', () => out({ id, type: 'connect', transport: socket.io.engine.transport.name }));
  socket.on('connect_error', (error) => out({ id, type: 'connect_error', message: error.message }));
  socket.on('disconnect', (reason) => out({ id, type: 'disconnect', reason }));
  socket.on('event', (data) => out({ id, type: 'event', data }));
  socket.on('presence', (data) => out({ id, type: 'presence', data }));
  socket.on('job', (data) => out({ id, type: 'job', data }));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let command;
  try { command = JSON.parse(line); } catch { return; }
  const socket = clients.get(command.id);
  switch (command.op) {
    case 'connect':
      connect(command);
      break;
    case 'emit':
      try {
        const data = await socket.timeout(10000).emitWithAck(command.event, command.data);
        out({ id: command.id, type: 'ack', tag: command.tag, data });
      } catch (error) {
        out({ id: command.id, type: 'ack_timeout', tag: command.tag, message: String(error) });
      }
      break;
    case 'drop':
      socket.io.engine.close();
      break;
    case 'close':
      socket.close();
      break;
  }
});
rl.on('close', () => process.exit(0));
