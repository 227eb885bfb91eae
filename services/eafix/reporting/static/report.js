// The report's charts (eafix.reporting.page): each figure is the JSON in the script after its div,
// drawn once its place comes within a screen of view, so nothing is drawn that nobody scrolled to.
// SL/TP levels (traces with meta "levels": a segment open..close per trade, separated by nulls) are
// drawn only for the trades in view, once the view holds at most layout.meta.levels_in_view of them:
// thousands of dotted segments would take seconds to draw and are a smear at full width.
const config = {displaylogo: false, responsive: true};

function levelsInView(div, full, limit) {
  const traces = [...full.keys()];
  let shown = 0;  // levels in view drawn (none at first)
  return () => {
    const axis = div._fullLayout[div._fullData[traces[0]].xaxis.replace('x', 'xaxis')];
    const [from, to] = axis.range.map(String);
    const parts = traces.map(i => {
      const {x, y} = full.get(i), kept = {x: [], y: []};
      for (let k = 0; k + 1 < x.length; k += 3) {
        if (x[k + 1] >= from && x[k] <= to) {
          kept.x.push(x[k], x[k + 1], null);
          kept.y.push(y[k], y[k + 1], null);
        }
      }
      return kept;
    });
    const count = Math.max(...parts.map(p => p.x.length / 3));
    const show = count <= limit ? count : 0;
    if (show === 0 && shown === 0) return;
    shown = show;
    Plotly.restyle(div, {x: parts.map(p => show ? p.x : []), y: parts.map(p => show ? p.y : [])}, traces);
  };
}

async function draw(div) {
  const figure = JSON.parse(div.nextElementSibling.textContent);
  const full = new Map();
  figure.data.forEach((trace, i) => {
    if (trace.meta === 'levels') {
      full.set(i, {x: trace.x, y: trace.y});
      trace.x = [];
      trace.y = [];
    }
  });
  await Plotly.newPlot(div, figure.data, figure.layout, config);
  if (full.size) {
    const update = levelsInView(div, full, figure.layout.meta.levels_in_view);
    update();
    div.on('plotly_relayout', update);
  }
  div.classList.add('drawn');  // for the browser test and bench/report_open.py
}

const nearView = new IntersectionObserver(seen => seen.filter(e => e.isIntersecting).forEach(e => {
  nearView.unobserve(e.target);
  draw(e.target);
}), {rootMargin: '100% 0px'});
document.querySelectorAll('.figure').forEach(div => nearView.observe(div));
