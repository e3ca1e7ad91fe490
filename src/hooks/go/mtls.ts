/**
 * go-plugin AutoMTLS, host side (protocol notes §A.5): a throw-away self-signed client certificate
 * (made with the openssl CLI, since Node's crypto cannot create X.509 certificates) goes to the
 * plugin in PLUGIN_CLIENT_CERT; the plugin answers with its own certificate in handshake field 6
 * (base64 of the DER, no padding), which becomes the only trusted root of the channel.
 */
import { execFile } from 'node:child_process';

export interface ClientCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * A P-256 self-signed certificate shaped like go-plugin's own (O=HashiCorp, CN=localhost, DNS SAN
 * localhost, CA, client+server auth, 30 years). The private key stays in memory.
 */
export function generateClientCertificate(openssl = 'openssl'): Promise<ClientCertificate> {
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', '-',
    '-subj', '/O=HashiCorp/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=digitalSignature,keyEncipherment,keyAgreement,keyCertSign',
    '-addext', 'extendedKeyUsage=clientAuth,serverAuth',
    '-days', '10950',
  ];
  return new Promise((resolve, reject) => {
    execFile(openssl, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`AutoMTLS: openssl failed: ${err.message}\n${stderr}`));
      const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(stdout);
      const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(stdout);
      if (!key || !cert) return reject(new Error('AutoMTLS: unexpected openssl output'));
      resolve({ keyPem: key[0], certPem: cert[0] });
    });
  });
}

/** Handshake field 6 (base64 RawStdEncoding of the DER certificate) → PEM. */
export function serverCertificatePem(field: string): string {
  const b64 = Buffer.from(field.trim(), 'base64').toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
