// DeriveSharedSecret through @aws-sdk/client-kms (Debian's botocore lacks
// the operation). Usage: node derive_shared_secret.mjs KEY_ID PEER_SPKI_B64 [expect-error]
// Prints JSON: the response (SharedSecret base64) and DescribeKey's
// KeyAgreementAlgorithms, or {"error": name} when an error is expected.
import { KMSClient, DeriveSharedSecretCommand, DescribeKeyCommand } from "@aws-sdk/client-kms";

const [keyId, peerB64, mode] = process.argv.slice(2);
const kms = new KMSClient({ endpoint: process.env.KINKO_ENDPOINT, maxAttempts: 1 });

try {
  const out = await kms.send(new DeriveSharedSecretCommand({
    KeyId: keyId,
    KeyAgreementAlgorithm: "ECDH",
    PublicKey: Buffer.from(peerB64, "base64"),
  }));
  if (mode === "expect-error") {
    console.log(JSON.stringify({ error: null }));
    process.exit(1);
  }
  const desc = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  console.log(JSON.stringify({
    KeyId: out.KeyId,
    KeyAgreementAlgorithm: out.KeyAgreementAlgorithm,
    KeyOrigin: out.KeyOrigin,
    SharedSecret: Buffer.from(out.SharedSecret).toString("base64"),
    Describe: { KeyAgreementAlgorithms: desc.KeyMetadata.KeyAgreementAlgorithms },
  }));
} catch (e) {
  if (mode !== "expect-error") throw e;
  console.log(JSON.stringify({ error: e.name, message: e.message }));
}
