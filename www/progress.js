// A running job's progress line, shared by both pages: the step, the time so far and, once a step
// is done, the time left. The ImageNet models take seconds to minutes for a job, where the small
// ones take milliseconds: the line says whether to wait or cancel.

/** `step 12/64 · 3.1 s · about 13 s left` for a step event `ev` ({step, steps}, step counted
 * from 0) at `ms` since the job began. Time left: the mean time per step so far times the
 * steps left (the first step, which warms up, makes it a little high at first). */
export function stepText(ev, ms) {
  const done = ev.step + 1;
  const parts = [`step ${done}/${ev.steps}`, duration(ms)];
  if (done < ev.steps) parts.push(`about ${duration((ms / done) * (ev.steps - done))} left`);
  return parts.join(" · ");
}

/** `0.4 s`, `13 s`, `2 min 05 s`. */
function duration(ms) {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
}
