import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { JobError, JobErrorCode } from "./job-error.js";

const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Authenticated encryption of job secrets with the operator's key (AES-256-GCM). The job id is
 * the additional authenticated data: a ciphertext copied onto another job does not decrypt.
 */
export interface SecretBox {
  /** Encrypts `plaintext` for the job `jobId`; returns text to store: `v1`, a random IV, the GCM tag and the ciphertext, base64, joined by dots. */
  seal(plaintext: string, jobId: string): string;
  /** Throws a {@link JobError} `SECRET_UNREADABLE` when the text was made with another key, for another job, or changed. */
  open(sealed: string, jobId: string): string;
}

/**
 * A {@link SecretBox} for a 32-byte key, given as 64 hex digits or base64 (`openssl rand -base64 32`).
 * A key of any other length is refused with `SECRET_KEY_INVALID`.
 */
export function createSecretBox(key: string | Uint8Array): SecretBox {
  const keyBytes = parseKey(key);
  return {
    seal(plaintext, jobId) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", keyBytes, iv);
      cipher.setAAD(Buffer.from(jobId, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return [VERSION, iv.toString("base64"), cipher.getAuthTag().toString("base64"), body.toString("base64")].join(".");
    },
    open(sealed, jobId) {
      const [version, iv, tag, body] = sealed.split(".");
      try {
        if (version !== VERSION || !iv || !tag || body === undefined) throw new Error(`unknown format ${JSON.stringify(version)}`);
        const decipher = createDecipheriv("aes-256-gcm", keyBytes, Buffer.from(iv, "base64"), { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(jobId, "utf8"));
        decipher.setAuthTag(Buffer.from(tag, "base64"));
        return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
      } catch (cause) {
        throw new JobError(
          JobErrorCode.SECRET_UNREADABLE,
          `The secrets of job ${jobId} cannot be decrypted: they were sealed with another key (check RUNNING_AGENT_SECRET_KEY on every worker) or changed in the database.`,
          { cause },
        );
      }
    },
  };
}

function parseKey(key: string | Uint8Array): Buffer {
  let bytes: Buffer;
  if (typeof key !== "string") bytes = Buffer.from(key);
  else if (/^[0-9a-f]{64}$/i.test(key.trim())) bytes = Buffer.from(key.trim(), "hex");
  else bytes = Buffer.from(key.trim(), "base64");
  if (bytes.length !== 32) {
    throw new JobError(JobErrorCode.SECRET_KEY_INVALID, `The secret key must be 32 bytes (64 hex digits, or base64 such as the output of 'openssl rand -base64 32'); got ${bytes.length} bytes.`);
  }
  return bytes;
}
