// Demo page: microphone or WAV file -> 16 kHz PCM16 -> WebSocket (same origin) -> transcript;
// or the microphone as an Opus track over WebRTC, the same messages on a data channel.
// Plain JavaScript, no build step. The message contract is docs/websocket-api.md.

const STREAM_PATH = "/v1/audio/transcriptions/stream";
const OFFER_PATH = "/v1/webrtc/offer";
const TARGET_RATE = 16000;
const FILE_CHUNK_MS = 100;

const ERROR_TEXT = {
  unauthorized: "The server needs an API key for this page.",
  invalid_config: "The server did not accept the recognition settings.",
  invalid_json: "The page sent a message the server could not read.",
  unknown_message_type: "The page sent a message the server does not know.",
  invalid_message: "The page sent a malformed message.",
  config_required: "The server expects settings before audio.",
  invalid_audio: "The server could not decode the audio.",
  frame_too_large: "An audio chunk was too large for the server.",
  too_fast: "Audio was sent faster than real time, so the server stopped the session.",
  too_many_sessions: "The server is busy with other sessions. Try again in a moment.",
  backend_unavailable: "The speech recogniser is not reachable right now. Try again in a moment.",
  backend_error: "The speech recogniser refused the request.",
  idle_timeout: "The session was closed because no audio arrived for a while.",
  session_too_long: "The session reached its maximum length.",
  internal_error: "The server ran into an internal error.",
};

// The WebSocket's close code per error code (docs/websocket-api.md), which a data channel
// cannot carry: over WebRTC the page takes it from the error message.
const ERROR_CLOSE = {
  unauthorized: 4001,
  invalid_config: 4002,
  recording_unavailable: 4002,
  invalid_json: 4003,
  unknown_message_type: 4003,
  invalid_message: 4003,
  config_required: 4003,
  invalid_audio: 4003,
  frame_too_large: 4004,
  too_fast: 4005,
  too_many_sessions: 4006,
  backend_unavailable: 4007,
  backend_error: 4008,
  idle_timeout: 4009,
  session_too_long: 4010,
  internal_error: 4011,
  client_too_slow: 4012,
};

const CLOSE_TEXT = {
  1000: "Finished.",
  1001: "The server is shutting down.",
  1006: "The connection was lost.",
  1009: "An audio chunk was too large for the server.",
  1011: "The server ran into an internal error.",
};

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"),
  stop: $("stop"),
  file: $("file"),
  punctuation: $("punctuation"),
  transport: $("transport"),
  status: $("status"),
  error: $("error"),
  finals: $("finals"),
  partial: $("partial"),
  meta: $("meta"),
  latency: $("latency"),
};

// Exposed for tests and the console.
const demo = {
  state: "idle",
  finals: [],
  partial: "",
  messages: [],
  closeCode: null,
  sessionId: null,
  latencies: [], // per final: { firstPartial, final } in seconds (null when unknown)
};
window.asrDemo = demo;

// The session's connection: a WebSocket, or `rtc` ({ pc, channel }) over WebRTC; `socket`
// is whichever carries the messages (a WebSocket or an RTCDataChannel: both have send()
// and readyState "open"/OPEN).
let socket = null;
let rtc = null;
let rtcAudioStart = null; // performance.now() at session.begin: audio time 0 over WebRTC
let capture = null; // { context, stream, node, source }
let fileTimer = null;

// --- latency ---------------------------------------------------------------------------
// Results carry audio times (seconds since the first audio sent); `sent` maps them back to
// when that audio left the page: one [audio seconds sent so far, performance.now()] entry
// per binary frame, in order.
let sent = [];
let firstPartialAt = null;

function sentAt(audioTime) {
  // Over WebRTC the browser sends the track itself: audio time t left about t seconds
  // after the session began (the server counts the track's audio from then).
  if (rtcAudioStart !== null) return rtcAudioStart + audioTime * 1000;
  let lo = 0;
  let hi = sent.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sent[mid][0] < audioTime - 1e-3) lo = mid + 1;
    else hi = mid;
  }
  return lo < sent.length ? sent[lo][1] : null;
}

function recordLatency(final) {
  // A final's start and end are its first and last word (word_timestamps is on), so the
  // first partial is timed from the speech start and the final from the last word's audio.
  const now = performance.now();
  const start = sentAt(final.start);
  const end = sentAt(final.end);
  const seconds = (from, to) => (from === null || to === null ? null : (to - from) / 1000);
  demo.latencies.push({ firstPartial: seconds(start, firstPartialAt), final: seconds(end, now) });
  const text = (v) => (v === null ? "–" : `${v.toFixed(2)} s`);
  ui.latency.textContent = demo.latencies
    .map((l, i) => `#${i + 1}: first partial ${text(l.firstPartial)}, final ${text(l.final)}`)
    .join(" · ");
}

function setState(state, text) {
  demo.state = state;
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  const busy = state === "connecting" || state === "streaming" || state === "finishing";
  ui.start.disabled = busy;
  ui.file.disabled = busy;
  ui.transport.disabled = busy;
  ui.stop.disabled = !(state === "connecting" || state === "streaming");
}

function showError(text) {
  ui.error.hidden = !text;
  ui.error.textContent = text || "";
}

function renderTranscript() {
  ui.finals.textContent = demo.finals.join(" ");
  ui.partial.textContent = demo.partial;
}

function sessionParams() {
  const params = new URLSearchParams({
    encoding: "pcm16",
    sample_rate: String(TARGET_RATE),
    interim_results: "true",
    punctuation: ui.punctuation.checked ? "true" : "false",
    word_timestamps: "true", // word times make the final's start and end the speech's
  });
  // On a server with API keys, the page is opened as /?token=... with a short-lived token
  // that the embedding backend got from POST /v1/tokens; the key itself never reaches it.
  const token = new URLSearchParams(location.search).get("token");
  if (token) params.set("token", token);
  return params;
}

function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${STREAM_PATH}?${sessionParams()}`;
}

function resetSession() {
  demo.finals = [];
  demo.partial = "";
  demo.messages = [];
  demo.closeCode = null;
  demo.latencies = [];
  sent = [];
  firstPartialAt = null;
  rtcAudioStart = null;
  ui.latency.textContent = "";
  renderTranscript();
  showError("");
  setState("connecting", "Connecting…");
}

// One session's messages, whichever way they came; `began` is called at session.begin,
// `failed` with an error message.
function handleMessage(message, began, failed) {
  demo.messages.push(message);
  switch (message.type) {
    case "session.begin":
      demo.sessionId = message.session_id;
      ui.meta.textContent = `Session ${message.session_id}`;
      began();
      break;
    case "transcript.partial":
      if (firstPartialAt === null) firstPartialAt = performance.now();
      demo.partial = message.text;
      renderTranscript();
      break;
    case "transcript.final":
      if (message.text) {
        demo.finals.push(message.text);
        recordLatency(message);
      }
      firstPartialAt = null;
      demo.partial = "";
      renderTranscript();
      break;
    case "session.end":
      ui.meta.textContent =
        `Session ${message.session_id}: ${message.audio_seconds.toFixed(1)} s of audio, ` +
        `${message.finals} final${message.finals === 1 ? "" : "s"}.`;
      break;
    case "warning":
      console.warn("server warning", message.code, message.message);
      break;
    case "error":
      failed(message);
      // Backend errors carry only a generic sentence (the detail stays in the server
      // log); other codes say what was wrong with the request, worth showing.
      showError(
        message.code.startsWith("backend_")
          ? ERROR_TEXT[message.code]
          : `${ERROR_TEXT[message.code] || "Error."} (${message.message})`,
      );
      break;
  }
}

function ended(code, failure) {
  demo.closeCode = code;
  stopCapture();
  stopFile();
  socket = null;
  if (failure || code !== 1000) {
    if (!failure) showError(CLOSE_TEXT[code] || `Connection closed (${code}).`);
    setState("error", `Disconnected (code ${code}).`);
  } else {
    setState("closed", "Finished. Every final transcript was received.");
  }
}

// WebRTC: the microphone's track and a data channel in one offer, answered by the gateway.
// The data channel has no close code: a session that ended with session.end closed as a
// WebSocket's 1000 would, one that ended with an error as that error's code says, any
// other end is a lost connection (1006).
function connectWebRtc(stream) {
  return new Promise(async (resolve, reject) => {
    resetSession();
    const pc = new RTCPeerConnection({ iceServers: [] }); // the gateway's candidates suffice
    const channel = pc.createDataChannel("asr");
    rtc = { pc, channel };
    let began = false;
    let failure = null;
    let finished = false;
    const close = () => {
      if (rtc === null || rtc.pc !== pc) return;
      rtc = null;
      pc.close();
      const over = demo.messages.some((m) => m.type === "session.end");
      const code = failure ? ERROR_CLOSE[failure.code] || 4011 : over ? 1000 : 1006;
      ended(code, failure);
      if (!began) reject(new Error(failure ? failure.code : "closed"));
    };
    channel.onmessage = (event) => {
      handleMessage(
        JSON.parse(event.data),
        () => {
          began = true;
          rtcAudioStart = performance.now();
          resolve(channel);
        },
        (message) => (failure = message),
      );
      if (demo.messages[demo.messages.length - 1].type === "session.end") finished = true;
    };
    channel.onclose = close;
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState) || (finished && pc.connectionState === "disconnected")) close();
    };
    socket = channel;
    try {
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly" });
      await pc.setLocalDescription();
      // The whole offer at once (no trickle ICE): wait for the candidates.
      await new Promise((done) => {
        if (pc.iceGatheringState === "complete") return done();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
        setTimeout(done, 3000);
      });
      const response = await fetch(`${OFFER_PATH}?${sessionParams()}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
      });
      const body = await response.json();
      if (!response.ok) {
        failure = { code: body.code, message: body.error };
        showError(`${ERROR_TEXT[body.code] || "The server refused the connection."} (${body.error})`);
        close();
        return;
      }
      await pc.setRemoteDescription(body);
    } catch (err) {
      failure = failure || { code: "internal_error", message: String(err) };
      showError(`WebRTC could not connect (${err.message || err}).`);
      close();
    }
  });
}

function connect() {
  return new Promise((resolve, reject) => {
    resetSession();
    const ws = new WebSocket(streamUrl());
    ws.binaryType = "arraybuffer";
    let began = false;
    let failure = null;
    ws.onmessage = (event) => {
      handleMessage(
        JSON.parse(event.data),
        () => {
          began = true;
          resolve(ws);
        },
        (message) => (failure = message),
      );
    };
    ws.onclose = (event) => {
      ended(event.code, failure);
      if (!began) reject(new Error(failure ? failure.code : `closed ${event.code}`));
    };
    ws.onerror = () => {
      // The close event follows with the details; nothing to add here.
    };
    socket = ws;
  });
}

function send(data) {
  if (!socket || !(socket.readyState === WebSocket.OPEN || socket.readyState === "open")) return;
  socket.send(data);
  if (typeof data !== "string") {
    const seconds = (sent.length ? sent[sent.length - 1][0] : 0) + data.byteLength / 2 / TARGET_RATE;
    sent.push([seconds, performance.now()]);
  }
}

// --- microphone ----------------------------------------------------------------------

async function startMicrophone() {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    showError("The microphone needs a secure page: open it over https:// or on localhost.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    showError(
      err.name === "NotAllowedError"
        ? "Microphone access was denied. Allow it in the browser to transcribe speech."
        : `No microphone could be opened (${err.name}).`,
    );
    return;
  }
  if (ui.transport.value === "webrtc") {
    try {
      await connectWebRtc(stream);
    } catch {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    // The browser encodes and sends the track itself; nothing to capture here.
    capture = { context: null, stream, node: null, source: null };
    setState("streaming", "Listening (microphone over WebRTC: Opus, echo cancellation, noise suppression).");
    return;
  }
  try {
    await connect();
  } catch {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("capture-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm16-capture", { numberOfOutputs: 1 });
  node.port.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) send(event.data);
  };
  // The node must be pulled by the graph to run; a muted gain keeps it silent.
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  capture = { context, stream, node, source };
  setState("streaming", `Listening (microphone at ${context.sampleRate} Hz → 16 kHz).`);
}

function stopCapture() {
  if (!capture) return;
  const { context, stream, node, source } = capture;
  capture = null;
  stream.getTracks().forEach((t) => t.stop());
  if (context === null) return; // WebRTC: the track was the whole capture
  source.disconnect();
  node.disconnect();
  context.close();
}

async function stopMicrophone() {
  if (capture && capture.node === null) {
    // WebRTC: the track goes on until the session ends (stopping it first would leave the
    // server a silent peer); the server's finals of the audio so far follow 'end'.
    finish();
    return;
  }
  if (capture) {
    const { node } = capture;
    // Ask the worklet for its last partial chunk before ending the stream.
    await new Promise((resolve) => {
      const previous = node.port.onmessage;
      node.port.onmessage = (event) => {
        previous(event);
        if (event.data === "flushed") resolve();
      };
      node.port.postMessage("flush");
      setTimeout(resolve, 500);
    });
    stopCapture();
  }
  finish();
}

// --- WAV file ------------------------------------------------------------------------

async function decodeToPcm16(file) {
  const bytes = await file.arrayBuffer();
  // decodeAudioData resamples to the context's rate: 16 kHz here.
  const context = new OfflineAudioContext(1, 1, TARGET_RATE);
  const buffer = await context.decodeAudioData(bytes);
  const mono = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < data.length; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const pcm = new Int16Array(mono.length);
  for (let i = 0; i < mono.length; i++) {
    pcm[i] = Math.round(Math.max(-1, Math.min(1, mono[i])) * 32767);
  }
  return pcm;
}

async function streamFile(file) {
  let pcm;
  try {
    pcm = await decodeToPcm16(file);
  } catch (err) {
    showError(`The file could not be decoded as audio (${err.message || err}).`);
    return;
  }
  try {
    await connect();
  } catch {
    return;
  }
  const seconds = pcm.length / TARGET_RATE;
  setState("streaming", `Streaming ${file.name} (${seconds.toFixed(1)} s) in real time…`);
  const chunk = (TARGET_RATE * FILE_CHUNK_MS) / 1000;
  const started = performance.now();
  let offset = 0;
  // Paced against the clock from the start, so timer jitter does not accumulate.
  const tick = () => {
    fileTimer = null;
    const due = Math.min(pcm.length, Math.floor(((performance.now() - started) / 1000) * TARGET_RATE));
    while (offset + chunk <= due || (due === pcm.length && offset < pcm.length)) {
      send(pcm.slice(offset, offset + chunk).buffer);
      offset += chunk;
    }
    if (offset >= pcm.length) {
      finish();
      return;
    }
    fileTimer = setTimeout(tick, FILE_CHUNK_MS / 2);
  };
  tick();
}

function stopFile() {
  if (fileTimer !== null) clearTimeout(fileTimer);
  fileTimer = null;
}

// --- ending --------------------------------------------------------------------------

function finish() {
  stopFile();
  if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === "open")) {
    send(JSON.stringify({ type: "end" }));
    setState("finishing", "Finishing: waiting for the last final transcript…");
  }
}

ui.start.addEventListener("click", () => startMicrophone());
ui.stop.addEventListener("click", () => (capture ? stopMicrophone() : finish()));
ui.file.addEventListener("change", () => {
  const [file] = ui.file.files;
  if (file) streamFile(file);
  ui.file.value = "";
});
setState("idle", "Not connected. Press Start, or choose a WAV file.");
