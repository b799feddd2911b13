// Certificates for TLS tests: a private CA, a server certificate for
// 127.0.0.1/localhost and a client certificate, made with openssl per test.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Makes ca.crt, server.crt/.key and client.crt/.key in dir; returns a path maker. */
export function makeCerts(dir: string): (name: string) => string {
  const pem = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=berth-test-ca', '-keyout', pem('ca.key'), '-out', pem('ca.crt'));
  writeFileSync(pem('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    ssl('req', ...ec, '-subj', `/CN=${who === 'server' ? 'localhost' : 'berth-client'}`, '-keyout', pem(`${who}.key`), '-out', pem(`${who}.csr`));
    ssl('x509', '-req', '-in', pem(`${who}.csr`), '-CA', pem('ca.crt'), '-CAkey', pem('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', pem('san.ext'), '-out', pem(`${who}.crt`));
  }
  return pem;
}
