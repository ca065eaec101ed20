// What every test peer does the same way: listen on 127.0.0.1 (a given port, or any), and close
// without waiting for idle keep-alive connections.
import { createServer, type Server } from 'node:http';

/** An HTTP server listening on 127.0.0.1; a malformed request never crashes the test process. */
export async function listenOnLoopback(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

/** Closes the server and every connection it still has, after clearing pending timers. */
export async function closeServer(server: Server, timers: Set<NodeJS.Timeout>): Promise<void> {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
