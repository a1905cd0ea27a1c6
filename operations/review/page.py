"""The editor's page: one result, its photo at its own resolution (zoom and pan), keep and
remove brushes, the model and the knobs, a preview after each change, and Accept.

Self-contained (no CDN). Every name it shows is set as text, never as HTML. The server fills in
``__DATA__`` (the result's name and the review order, as JSON) and ``__TITLE__`` (escaped).
"""

EDITOR = """<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1">
<title>Fix __TITLE__ — BackgroundSwap review</title>
<style>
:root{color-scheme:light dark;--bg:#f6f6f4;--ink:#222;--mute:#777;--line:#ccc;--panel:#fff}
@media (prefers-color-scheme:dark){:root{--bg:#1b1b1d;--ink:#eee;--mute:#999;--line:#3a3a3f;--panel:#26262a}}
*{box-sizing:border-box}html,body{height:100%;margin:0}
body{display:grid;grid-template-rows:auto 1fr auto;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--ink)}
header,footer{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;padding:8px 12px;background:var(--panel);border-bottom:1px solid var(--line)}
footer{border-top:1px solid var(--line);border-bottom:0;color:var(--mute)}
h1{font-size:15px;margin:0;max-width:30vw;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
button,select,input{font:inherit}button{padding:3px 10px;border:1px solid var(--line);border-radius:6px;background:var(--panel);color:var(--ink);cursor:pointer}
button[aria-pressed=true]{background:#3568d4;color:#fff;border-color:#3568d4}
#accept{background:#2a9d55;color:#fff;border-color:#2a9d55;font-weight:600}
label{display:inline-flex;gap:4px;align-items:center}input[type=number]{width:5em}
#stage{position:relative;overflow:hidden;background:repeating-conic-gradient(#8883 0 25%,#0000 0 50%) 0 0/20px 20px;touch-action:none}
canvas{position:absolute;inset:0;width:100%;height:100%}
#status.err{color:#d33}kbd{border:1px solid var(--line);border-radius:3px;padding:0 4px;font-size:12px}
</style></head><body>
<header>
 <a href="/">← all results</a><h1 id="title"></h1>
 <span role="group" aria-label="brush">
  <button id="keep" aria-pressed="true" title="paint what is subject (q)">Keep</button>
  <button id="remove" aria-pressed="false" title="paint what is background (w)">Remove</button>
 </span>
 <label>size <input id="size" type="range" min="2" max="400" value="30"></label>
 <button id="undo" title="undo the last stroke (u, Ctrl+Z)">Undo</button>
 <span role="group" aria-label="view">
  <button data-view="result" aria-pressed="true" title="v cycles">After</button>
  <button data-view="before" aria-pressed="false">Before</button>
  <button data-view="mask" aria-pressed="false">Mask</button>
 </span>
 <label>model <select id="mode"><option value="">the run's</option></select></label>
 <label>edges <select id="matting"><option value="">the run's</option>
  <option>fast</option><option>quality</option><option>off</option></select></label>
 <label>threshold <input id="threshold" type="number" min="0" max="1" step="0.05" placeholder="off"></label>
 <label>grow <input id="grow" type="number" min="-500" max="500" step="1" value="0"></label>
 <label>feather <input id="feather" type="number" min="0" max="500" step="1" value="0"></label>
 <button id="accept" title="write this result (a)">Accept</button>
</header>
<div id="stage"><canvas id="view"></canvas></div>
<footer><span id="status">loading…</span>
 <span><kbd>q</kbd>/<kbd>w</kbd> keep/remove · <kbd>[</kbd>/<kbd>]</kbd> size · <kbd>u</kbd> undo ·
 <kbd>v</kbd> view · wheel: zoom · right-drag or space+drag: pan · <kbd>0</kbd> fit ·
 <kbd>a</kbd> accept · <kbd>j</kbd>/<kbd>k</kbd> next/previous</span></footer>
<script>
const DATA=__DATA__;const NAME=DATA.name;
const api=p=>'/api/results/'+NAME.split('/').map(encodeURIComponent).join('/')+p;
const $=id=>document.getElementById(id);
const canvas=$('view'),ctx=canvas.getContext('2d'),status=$('status');
let info=null,photo=new Image(),after=null,mask=null,view='result',kind='keep';
let strokes=[],drawing=null,scale=1,ox=0,oy=0,panning=null,space=false,timer=null,asked=0;
$('title').textContent=NAME;
function say(text,bad){status.textContent=text;status.className=bad?'err':'';}
function fit(){const r=canvas.getBoundingClientRect();canvas.width=r.width*devicePixelRatio;
 canvas.height=r.height*devicePixelRatio;if(!info)return;
 scale=Math.min(canvas.width/info.width,canvas.height/info.height);
 ox=(canvas.width-info.width*scale)/2;oy=(canvas.height-info.height*scale)/2;draw();}
function draw(){ctx.setTransform(1,0,0,1,0,0);ctx.clearRect(0,0,canvas.width,canvas.height);
 if(!info)return;ctx.setTransform(scale,0,0,scale,ox,oy);
 const shown=view=='before'?photo:view=='mask'?(mask||photo):(after||photo);
 if(shown.complete&&shown.naturalWidth)ctx.drawImage(shown,0,0,info.width,info.height);
 for(const s of drawing?[...strokes,drawing]:strokes){
  ctx.strokeStyle=ctx.fillStyle=s.kind=='keep'?'rgba(40,200,90,.45)':'rgba(230,50,50,.45)';
  ctx.lineWidth=2*s.radius;ctx.lineCap=ctx.lineJoin='round';ctx.beginPath();
  s.points.forEach(([x,y],i)=>i?ctx.lineTo(x,y):ctx.moveTo(x,y));
  if(s.points.length==1){ctx.arc(s.points[0][0],s.points[0][1],s.radius,0,7);ctx.fill();}else ctx.stroke();}}
function at(e){const r=canvas.getBoundingClientRect();
 return[((e.clientX-r.left)*devicePixelRatio-ox)/scale,((e.clientY-r.top)*devicePixelRatio-oy)/scale];}
function body(){const n=id=>$(id).value===''?null:Number($(id).value);
 return{strokes:strokes,mode:$('mode').value||null,matting:$('matting').value||null,
  threshold:n('threshold'),grow:n('grow')||0,feather:n('feather')||0,revision:info?info.revision:null};}
function post(path,data){return fetch(api(path),{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(data)});}
function load(blob){return new Promise(ok=>{const i=new Image();i.onload=()=>ok(i);i.src=URL.createObjectURL(blob);});}
async function preview(){const n=++asked,t0=performance.now();say('preview…');
 try{const [a,m]=await Promise.all([post('/preview',body()),post('/preview?view=mask',body())]);
  if(!a.ok){say((await a.json()).error||a.statusText,true);return;}
  const [ia,im]=await Promise.all([load(await a.blob()),load(await m.blob())]);
  if(n!=asked)return;after=ia;mask=im;draw();
  say('preview in '+((performance.now()-t0)/1000).toFixed(2)+' s · '+strokes.length+' strokes');
 }catch(err){say(String(err),true);}}
function later(){clearTimeout(timer);timer=setTimeout(preview,120);}
function brush(k){kind=k;$('keep').setAttribute('aria-pressed',k=='keep');$('remove').setAttribute('aria-pressed',k=='remove');}
function show(v){view=v;for(const b of document.querySelectorAll('[data-view]'))b.setAttribute('aria-pressed',b.dataset.view==v);draw();}
async function accept(){say('writing the result at full resolution…');
 const r=await post('/accept',body());const j=await r.json();
 if(!r.ok){say(j.error||r.statusText,true);return;}
 info.revision=j.revision;say('accepted: revision '+j.revision+' written in '+j.seconds+' s');}
function go(step){const i=DATA.order.indexOf(NAME)+step;
 if(i>=0&&i<DATA.order.length)location.href='/fix/'+DATA.order[i].split('/').map(encodeURIComponent).join('/');}
canvas.addEventListener('pointerdown',e=>{canvas.setPointerCapture(e.pointerId);
 if(e.button==2||e.button==1||space){panning=[e.clientX,e.clientY,ox,oy];return;}
 if(e.button!=0)return;drawing={kind:kind,radius:Math.max(1,Number($('size').value)/2/scale*devicePixelRatio),points:[at(e)]};draw();});
canvas.addEventListener('pointermove',e=>{
 if(panning){ox=panning[2]+(e.clientX-panning[0])*devicePixelRatio;oy=panning[3]+(e.clientY-panning[1])*devicePixelRatio;draw();return;}
 if(!drawing)return;const p=at(e),q=drawing.points[drawing.points.length-1];
 if(Math.hypot(p[0]-q[0],p[1]-q[1])*scale>=1){drawing.points.push(p);draw();}});
canvas.addEventListener('pointerup',e=>{if(panning){panning=null;return;}
 if(!drawing)return;strokes.push(drawing);drawing=null;draw();later();});
canvas.addEventListener('contextmenu',e=>e.preventDefault());
canvas.addEventListener('wheel',e=>{e.preventDefault();const r=canvas.getBoundingClientRect();
 const x=(e.clientX-r.left)*devicePixelRatio,y=(e.clientY-r.top)*devicePixelRatio,f=Math.exp(-e.deltaY/500);
 ox=x-(x-ox)*f;oy=y-(y-oy)*f;scale*=f;draw();},{passive:false});
$('keep').onclick=()=>brush('keep');$('remove').onclick=()=>brush('remove');
$('undo').onclick=()=>{strokes.pop();draw();later();};$('accept').onclick=accept;
for(const b of document.querySelectorAll('[data-view]'))b.onclick=()=>show(b.dataset.view);
for(const id of ['mode','matting','threshold','grow','feather'])$(id).addEventListener('change',later);
document.addEventListener('keydown',e=>{if(e.target.tagName=='INPUT'||e.target.tagName=='SELECT')return;
 if((e.ctrlKey||e.metaKey)&&e.key=='z'){strokes.pop();draw();later();e.preventDefault();return;}
 if(e.ctrlKey||e.metaKey||e.altKey)return;const k=e.key;
 if(k==' ')space=true;else if(k=='q')brush('keep');else if(k=='w')brush('remove');
 else if(k=='u'){strokes.pop();draw();later();}
 else if(k=='['||k==']'){const s=$('size');s.value=Number(s.value)*(k=='['?0.8:1.25);}
 else if(k=='v')show({result:'before',before:'mask',mask:'result'}[view]);
 else if(k=='0')fit();else if(k=='a')accept();else if(k=='j')go(1);else if(k=='k')go(-1);
 else return;e.preventDefault();});
document.addEventListener('keyup',e=>{if(e.key==' ')space=false;});
addEventListener('resize',fit);
(async()=>{const r=await fetch(api(''));info=await r.json();
 if(!r.ok){say(info.error||r.statusText,true);return;}
 const models=await (await fetch('/api/models')).json();
 for(const m of models){const o=document.createElement('option');o.value=o.textContent=m;$('mode').append(o);}
 photo.onload=()=>{fit();preview();};photo.src=info.photo;})();
</script></body></html>
"""  # noqa: E501 - the page, its style and script
