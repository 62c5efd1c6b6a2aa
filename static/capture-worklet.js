// AudioWorklet processor: microphone samples at the context's rate -> 16 kHz PCM16 chunks.
//
// Runs on the audio rendering thread. Downsampling low-pass filters first (a windowed-sinc
// FIR below the new Nyquist frequency) so that speech energy above 8 kHz does not fold back
// into the band the recogniser hears, then interpolates linearly at the output positions.
// Chunks of CHUNK_MS are posted to the main thread as transferable ArrayBuffers.

const TARGET_RATE = 16000;
const CHUNK_MS = 50;
const TAPS = 63;

function lowPassTaps(cutoff) {
  // cutoff in cycles per input sample (0..0.5); Blackman window; unity gain at DC.
  const taps = new Float32Array(TAPS);
  const middle = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - middle;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const window =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) +
      0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < TAPS; i++) taps[i] /= sum;
  return taps;
}

class Resampler {
  constructor(inputRate, outputRate) {
    this.step = inputRate / outputRate; // input samples per output sample
    this.taps = this.step > 1 ? lowPassTaps((0.5 / this.step) * 0.9) : null;
    this.history = new Float32Array(TAPS - 1); // FIR input history
    this.filtered = [];
    this.position = 0; // next output position, in filtered-sample coordinates
  }

  push(input) {
    let samples = input;
    if (this.taps) {
      const joined = new Float32Array(this.history.length + input.length);
      joined.set(this.history);
      joined.set(input, this.history.length);
      samples = new Float32Array(input.length);
      for (let n = 0; n < input.length; n++) {
        let acc = 0;
        for (let k = 0; k < TAPS; k++) acc += this.taps[k] * joined[n + k];
        samples[n] = acc;
      }
      this.history = joined.slice(joined.length - (TAPS - 1));
    }
    for (const s of samples) this.filtered.push(s);
    const out = [];
    while (this.position + 1 < this.filtered.length) {
      const i = Math.floor(this.position);
      const frac = this.position - i;
      out.push(this.filtered[i] * (1 - frac) + this.filtered[i + 1] * frac);
      this.position += this.step;
    }
    const used = Math.floor(this.position);
    this.filtered = this.filtered.slice(used);
    this.position -= used;
    return out;
  }
}

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate, TARGET_RATE);
    this.chunk = new Int16Array((TARGET_RATE * CHUNK_MS) / 1000);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.flush();
    };
  }

  flush() {
    if (this.filled > 0) {
      const buffer = this.chunk.slice(0, this.filled).buffer;
      this.port.postMessage(buffer, [buffer]);
    }
    this.filled = 0;
    this.port.postMessage("flushed");
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    // Mix down to mono.
    const frames = channels[0].length;
    const mono = new Float32Array(frames);
    for (const channel of channels) {
      for (let i = 0; i < frames; i++) mono[i] += channel[i] / channels.length;
    }
    for (const sample of this.resampler.push(mono)) {
      const clipped = Math.max(-1, Math.min(1, sample));
      this.chunk[this.filled++] = Math.round(clipped * 32767);
      if (this.filled === this.chunk.length) {
        const buffer = this.chunk.slice().buffer;
        this.port.postMessage(buffer, [buffer]);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
