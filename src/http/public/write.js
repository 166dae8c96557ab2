// Writing a writable tag (contract §4: POST /api/v1/devices/{id}/tags/{tag}/write with
// {"value": …}, operator token required). Two steps: enter the value, then confirm a sentence
// that names the device, the tag and the value; nothing is sent before the confirmation.

const WRITE_TIMEOUT_MS = 15_000;

/** Parses what the operator typed into the type the tag holds now; `{ok:false}` when it cannot. */
export function parseWriteValue(text, current) {
  if (typeof current === "boolean") {
    if (text === "true" || text === "1") return { ok: true, value: true };
    if (text === "false" || text === "0") return { ok: true, value: false };
    return { ok: false };
  }
  if (typeof current === "number") {
    const s = text.trim().replace(",", ".");
    const n = s === "" ? NaN : Number(s);
    return Number.isFinite(n) ? { ok: true, value: n } : { ok: false };
  }
  return { ok: true, value: text };
}

/** Wires the <dialog>. `ctx`: `fmt`, `t`, `token()`, `onWritten(tagState, value)`. Returns `open(tagState)`. */
export function writeDialog(ctx, $) {
  const dlg = $("write-dialog");
  const input = $("write-input");
  const bool = $("write-bool");
  const step1 = $("write-step1");
  const step2 = $("write-step2");
  const step3 = $("write-step3");
  const result = $("write-result");
  const confirm = $("write-confirm");
  let target = null;
  let pending = null;
  let busy = false;

  const showStep = (n) => {
    step1.hidden = n !== 1;
    step2.hidden = n !== 2;
    step3.hidden = n !== 3;
  };

  const open = (ts) => {
    const { t, fmt } = ctx;
    target = ts;
    pending = null;
    busy = false;
    result.textContent = "";
    result.className = "";
    $("write-title").textContent = t("write.title", { device: ts.device, tag: ts.tag });
    $("write-current").textContent = t("write.current", { v: `${fmt.value(ts.value)}${ts.unit ? ` ${ts.unit}` : ""}` });
    const isBool = typeof ts.value === "boolean";
    bool.hidden = !isBool;
    input.hidden = isBool;
    input.inputMode = typeof ts.value === "number" ? "decimal" : "text";
    input.value = isBool || ts.value === null ? "" : String(ts.value);
    bool.value = ts.value === true ? "false" : "true";
    showStep(1);
    dlg.showModal();
    (isBool ? bool : input).focus();
  };

  // Step 1 → 2: the form's submit (Enter or "Review").
  $("write-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!target || busy) return;
    const { t, fmt } = ctx;
    const parsed = parseWriteValue(bool.hidden ? input.value : bool.value, target.value);
    if (!parsed.ok) {
      result.textContent = t("write.invalid");
      result.className = "error-text";
      return;
    }
    pending = parsed.value;
    result.textContent = "";
    $("write-question").textContent = t("write.confirmQ", { v: `${fmt.value(pending)}${target.unit ? ` ${target.unit}` : ""}`, device: target.device, tag: target.tag });
    showStep(2);
    confirm.focus();
  });
  $("write-back").addEventListener("click", () => { if (!busy) showStep(1); });
  $("write-cancel").addEventListener("click", () => dlg.close());
  $("write-close").addEventListener("click", () => dlg.close());

  confirm.addEventListener("click", async () => {
    if (!target || pending === null || busy) return;
    const { t, fmt } = ctx;
    const ts = target;
    const value = pending;
    busy = true;
    confirm.disabled = true;
    result.textContent = t("write.sending");
    result.className = "muted";
    try {
      const token = ctx.token();
      const r = await fetch(`/api/v1/devices/${encodeURIComponent(ts.device)}/tags/${encodeURIComponent(ts.tag)}/write`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ value }),
        signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        result.textContent = t("write.done", { device: ts.device, tag: ts.tag, v: fmt.value(value) });
        result.className = "ok-text";
        ctx.onWritten(ts, value);
        showStep(3);
        $("write-close").focus();
      } else {
        const problems = Array.isArray(body.problems) ? body.problems.map((p) => `${p.path}: ${p.message}`).join("; ") : "";
        result.textContent = t("write.failed", { e: `${r.status} ${body.error ?? ""}${problems ? ` (${problems})` : ""}` });
        result.className = "error-text";
      }
    } catch (err) {
      result.textContent = t("write.failed", { e: err instanceof Error ? err.message : String(err) });
      result.className = "error-text";
    } finally {
      busy = false;
      confirm.disabled = false;
    }
  });

  return open;
}
