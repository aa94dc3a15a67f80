// An Ethereum signer backed by a kinko secp256k1 key: an ethers v6
// AbstractSigner whose private key never leaves KMS. The address is
// computed from the key's SubjectPublicKeyInfo; signatures come from
// KMS Sign (ECDSA_SHA_256 over the 32-byte Keccak digest, MessageType
// DIGEST, DER-encoded), turned into Ethereum's (r, low-s, v) form.
// Usage: node ethereum_signer.mjs KEY_ID — prints JSON with the address
// and the addresses ethers recovers from a signed message and transaction.
import { KMSClient, GetPublicKeyCommand, SignCommand } from "@aws-sdk/client-kms";
import {
  AbstractSigner, Signature, Transaction, computeAddress, getBytes, hashMessage,
  hexlify, recoverAddress, resolveAddress, verifyMessage,
} from "ethers";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// Reads one DER INTEGER at buf[off]; returns [value, next offset].
function derInt(buf, off) {
  if (buf[off] !== 0x02) throw new Error("not a DER INTEGER");
  const len = buf[off + 1];
  const bytes = buf.subarray(off + 2, off + 2 + len);
  return [BigInt("0x" + Buffer.from(bytes).toString("hex")), off + 2 + len];
}

// Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
function parseDerSignature(der) {
  const buf = Buffer.from(der);
  if (buf[0] !== 0x30) throw new Error("not a DER SEQUENCE");
  let off = buf[1] & 0x80 ? 2 + (buf[1] & 0x7f) : 2;
  const [r, o2] = derInt(buf, off);
  const [s] = derInt(buf, o2);
  return { r, s };
}

const hex32 = (v) => "0x" + v.toString(16).padStart(64, "0");

class KmsSigner extends AbstractSigner {
  constructor(kms, keyId, provider = null) {
    super(provider);
    this.kms = kms;
    this.keyId = keyId;
  }
  connect(provider) { return new KmsSigner(this.kms, this.keyId, provider); }

  async publicKey() {
    if (!this._pub) {
      const out = await this.kms.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
      const spki = Buffer.from(out.PublicKey);
      // The uncompressed point (0x04 || X || Y) ends the SPKI's BIT STRING.
      this._pub = hexlify(spki.subarray(spki.length - 65));
    }
    return this._pub;
  }
  async getAddress() { return computeAddress(await this.publicKey()); }

  async signDigest(digest) {
    const out = await this.kms.send(new SignCommand({
      KeyId: this.keyId, Message: getBytes(digest), MessageType: "DIGEST",
      SigningAlgorithm: "ECDSA_SHA_256",
    }));
    let { r, s } = parseDerSignature(out.Signature);
    if (s > N / 2n) s = N - s; // Ethereum wants low-s (EIP-2)
    const address = await this.getAddress();
    for (const v of [27, 28]) {
      const sig = Signature.from({ r: hex32(r), s: hex32(s), v });
      if (recoverAddress(digest, sig) === address) return sig;
    }
    throw new Error("no recovery id matches the KMS public key");
  }
  async signMessage(message) { return (await this.signDigest(hashMessage(message))).serialized; }
  async signTransaction(txRequest) {
    const req = { ...txRequest };
    if (req.to) req.to = await resolveAddress(req.to);
    delete req.from;
    const tx = Transaction.from(req);
    tx.signature = await this.signDigest(tx.unsignedHash);
    return tx.serialized;
  }
  async signTypedData() { throw new Error("not needed by this test"); }
}

const kms = new KMSClient({ endpoint: process.env.KINKO_ENDPOINT, maxAttempts: 1 });
const signer = new KmsSigner(kms, process.argv[2]);
const address = await signer.getAddress();
const message = "kinko signs for Ethereum";
const signed = await signer.signMessage(message);
const rawTx = await signer.signTransaction({
  type: 2, chainId: 1, nonce: 7, to: "0x000000000000000000000000000000000000dEaD",
  value: 10n ** 15n, gasLimit: 21000n, maxFeePerGas: 30n * 10n ** 9n,
  maxPriorityFeePerGas: 10n ** 9n, data: "0x",
});
console.log(JSON.stringify({
  address,
  publicKeyHex: await signer.publicKey(),
  recoveredMessage: verifyMessage(message, signed),
  recoveredTx: Transaction.from(rawTx).from,
}));
