/**
 * OpenSSH certificates (`*-cert.pub`, PROTOCOL.certkeys) for ssh2 1.17, which has none (ssh2 issue #551): user
 * certificates presented by the client, and host certificates presented by the server. This file and the three it
 * gathers (`host-certificate-patch.ts`, `user-certificate-patch.ts`, `agent-certificates.ts`) are the only place
 * tunnel patches ssh2.
 *
 * User certificates. ssh2's key parser drops certificate blobs; this file parses them itself and wraps the certified
 * private key in a key object whose public blob is the certificate. And `Protocol#authPK` writes one algorithm name
 * both into the request (where a certificate needs `ssh-ed25519-cert-v01@openssh.com`) and into the signature (where
 * the server expects the plain `ssh-ed25519` / `rsa-sha2-512`). `installCertificateSupport()` wraps `authPK` so that
 * for certificate keys the signed request carries the right name inside the signature; every other key goes through
 * ssh2's own code untouched. ssh2's agent client drops the certificates an ssh-agent holds for the same reason;
 * `certificateAgent()` lists the agent's identities itself and signs through ssh2's public `OpenSSHAgent`.
 *
 * Host certificates. Three pieces of ssh2's key exchange (`lib/protocol/kex.js`) stand in the way, and each is
 * changed as little as it can be, by `installHostCertificateSupport()` when this module is first evaluated:
 * - The host key algorithms a client may offer are checked against `SUPPORTED_SERVER_HOST_KEY`, an array of
 *   `lib/protocol/constants.js` that ssh2 reads by reference: the certificate algorithms are appended to it (the
 *   defaults stay as they are, so only a caller that lists them offers them; the transport does when a
 *   `@cert-authority` line names the host).
 * - The KEX reply handler requires the host key blob's type to equal the negotiated algorithm (it knows
 *   `rsa-sha2-512` → `ssh-rsa`, not `rsa-sha2-512-cert-v01@openssh.com` → `ssh-rsa-cert-v01@openssh.com`), and
 *   `finish()` then requires the exchange signature's algorithm to equal it too, while the server signs with the
 *   plain `ssh-ed25519` / `rsa-sha2-512`. An accessor for `Protocol#_kex` sees each client key exchange as ssh2
 *   creates it; when a certificate algorithm was negotiated it sets `negotiated.serverHostKey` to the certificate's
 *   blob type, and, once the reply's host key is stored (`_hostKey`, after that check and before the host
 *   verifier runs), to the plain signature algorithm. The exchange hash still covers the certificate blob.
 * - `finish()` parses the host key with `parseDERKey(blob, name)` of `lib/protocol/keyParser.js`, which knows no
 *   certificate names. kex.js takes that function when it is first loaded, so it is wrapped before: for a certificate
 *   name the wrapper parses the certified public key out of the certificate (every other name goes to ssh2's own
 *   parser). That is why the transport loads ssh2 at run time through `loadSsh2()`, after this module installed the
 *   patch, rather than with a static import. When something loaded ssh2's protocol modules first (an application
 *   importing `ssh2` before `@tunnel-sh/transport-ssh2`), host certificates stay off and
 *   `hostCertificateSupport()` says why.
 *
 * Neither patch trusts anything: the transport's host verifier receives the whole certificate blob and checks it
 * against known_hosts (`verifyHostCertificate` in known-hosts.ts) — the CA's signature, the type, the principals,
 * the validity window and `@revoked` — and the key the certificate certifies is the key the exchange signature is
 * verified with. Both refuse to install, with a message naming what changed, when the ssh2 internals they rely on
 * are not there; `missingSsh2Internals()` checks all of them and test/ssh2-certificates.test.ts calls it, so an ssh2
 * upgrade that breaks a patch fails the tests.
 */
export { HOST_CERTIFICATE_KEY_ALGORITHMS, hostCertificateSupport, loadSsh2 } from "./host-certificate-patch.js";
export { certificateKey, certificateSignatureHash, installCertificateSupport, missingSsh2Internals } from "./user-certificate-patch.js";
export { certificateAgent } from "./agent-certificates.js";
