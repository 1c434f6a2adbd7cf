/**
 * The cipher order the master offers when the user chose none: AES-GCM first. OpenSSH's default list starts with
 * chacha20-poly1305, which on CPUs with AES instructions (nearly every x86 and ARM server) costs about twice the CPU
 * per byte of AES-GCM; a file transfer through the master is bound by that CPU on both ends. The list below is
 * OpenSSH's own default set, reordered — no cipher is added or dropped — and the server still picks from it.
 *
 * A `Ciphers` line anywhere in the ssh_config files ssh reads (following `Include`s), or in the `options` passed to
 * the transport, is the user's choice and is left alone; so is any config the scan cannot read to the end.
 */
import { readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";

export const PREFERRED_CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";

/** How deep `Include`s are followed (ssh itself stops at 16). */
const MAX_DEPTH = 16;

/** The words of an ssh_config line after its keyword (`Include a "b c"`), quotes removed. */
function words(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? "");
}

/** The files an `Include` word names: `~` expanded, relative to `base`, a wildcard in the last part only. */
function included(word: string, base: string): string[] | undefined {
  const path = word.startsWith("~/") ? join(homedir(), word.slice(2)) : isAbsolute(word) ? word : join(base, word);
  const folder = dirname(path);
  if (/[*?[]/.test(folder)) return undefined;
  const name = basename(path);
  if (!/[*?]/.test(name)) return [path];
  const pattern = new RegExp(
    `^${name
      .replace(/[.+^${}()|\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  try {
    return readdirSync(folder)
      .filter((entry) => pattern.test(entry))
      .sort()
      .map((entry) => join(folder, entry));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? [] : undefined;
  }
}

/** Whether `path` (and what it includes) leaves `Ciphers` unset; undefined when that cannot be told. */
function leavesCiphersUnset(path: string, base: string, depth: number): boolean | undefined {
  if (depth > MAX_DEPTH) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? true : undefined;
  }
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([A-Za-z]+)\s*(?:=\s*|\s)(.*)$/.exec(line);
    const keyword = match?.[1]?.toLowerCase();
    if (keyword === "ciphers") return false;
    if (keyword !== "include") continue;
    for (const word of words(match?.[2] ?? "")) {
      const files = included(word, base);
      if (files === undefined) return undefined;
      for (const file of files) {
        const unset = leavesCiphersUnset(file, base, depth + 1);
        if (unset !== true) return unset;
      }
    }
  }
  return true;
}

/**
 * `["-o", "Ciphers=…"]` for the master when neither the ssh_config files ssh reads (`configFile`: a path, `false` for
 * none, undefined for `~/.ssh/config` and `/etc/ssh/ssh_config`) nor `extraOptions` set `Ciphers`; otherwise nothing.
 */
export function cipherPreference(configFile: string | false | undefined, extraOptions: readonly (readonly [string, string])[]): string[] {
  const key = `${configFile === false ? "\0none" : (configFile ?? "\0default")}`;
  let cached = scanned.get(extraOptions)?.get(key);
  if (cached === undefined) {
    cached = scan(configFile, extraOptions);
    const byConfig = scanned.get(extraOptions) ?? new Map<string, readonly string[]>();
    byConfig.set(key, cached);
    scanned.set(extraOptions, byConfig);
  }
  return [...cached];
}

/** Scanned once per transport (its resolved `extraOptions`) and config file: the files are not read at every connect. */
const scanned = new WeakMap<object, Map<string, readonly string[]>>();

function scan(configFile: string | false | undefined, extraOptions: readonly (readonly [string, string])[]): readonly string[] {
  if (extraOptions.some(([key]) => key.toLowerCase() === "ciphers")) return [];
  const files: Array<readonly [string, string]> =
    configFile === false
      ? []
      : configFile !== undefined
        ? [[configFile, join(homedir(), ".ssh")]]
        : [
            [join(homedir(), ".ssh", "config"), join(homedir(), ".ssh")],
            ["/etc/ssh/ssh_config", "/etc/ssh"],
          ];
  for (const [file, base] of files) if (leavesCiphersUnset(file, base, 0) !== true) return [];
  return ["-o", `Ciphers=${PREFERRED_CIPHERS}`];
}
