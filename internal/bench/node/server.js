// The Node.js server chapter 06 is compared with: the ws package
// (https://github.com/websockets/ws), as its own echo example uses it, on
// the two endpoints the load generator drives:
//
//   /echo           every text and binary message sent back unchanged
//   /ws?name=NICK   a chat room that speaks chapter 06's JSON events
//
// It listens on 127.0.0.1, on a free port that it prints as chapter 06
// does. ws checks text messages are UTF-8 unless told not to, as chapter
// 06 does, and compresses nothing unless told to, as neither other server
// can. bench starts it with `node server.js` after `npm ci` in this folder.
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');

const server = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const echo = new WebSocketServer({ noServer: true });
const chat = new WebSocketServer({ noServer: true });

echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

// The room: as the Go servers' room in servers.go, each event encoded once
// and sent to every member; a member whose send buffer holds more than
// 64 events' worth has fallen behind and is dropped.
const members = new Map(); // by lower-case name
const backlog = 64 * 1024;

function broadcast(event) {
  const text = JSON.stringify(event);
  for (const [key, m] of members) {
    if (m.bufferedAmount > backlog) {
      members.delete(key);
      m.terminate();
      continue;
    }
    m.send(text);
  }
}

chat.on('connection', (ws, name) => {
  const key = name.toLowerCase();
  if (name === '' || members.has(key)) {
    ws.close(1008, 'name taken');
    return;
  }
  ws.nick = name;
  members.set(key, ws);
  const online = [...members.values()].map((m) => m.nick).sort();
  ws.send(JSON.stringify({ type: 'welcome', name, online }));
  broadcast({ type: 'join', name });
  ws.on('message', (data) => broadcast({ type: 'message', name, text: data.toString() }));
  ws.on('close', () => {
    if (members.get(key) === ws) {
      members.delete(key);
      broadcast({ type: 'leave', name, reason: 'left' });
    }
  });
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/echo') {
    echo.handleUpgrade(req, socket, head, (ws) => echo.emit('connection', ws));
  } else if (url.pathname === '/ws') {
    chat.handleUpgrade(req, socket, head, (ws) => chat.emit('connection', ws, url.searchParams.get('name') || ''));
  } else {
    socket.destroy();
  }
});

server.listen(0, '127.0.0.1', () => {
  console.log(`node-ws listening: open http://127.0.0.1:${server.address().port}/`);
});
