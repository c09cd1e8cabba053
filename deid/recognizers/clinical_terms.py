"""Clinical words that must never be taken for a name or place on their own.

Built by the project from common ICU, ward and clinic shorthand: abbreviations, drugs, devices,
tube feeds, wound products, charting systems, units and note headers. Many collide with surnames or first names in the census lists
("foley", "cv", "lasix", "art", "pat"); a hit on one of these is PHI only with strong context
(a title such as "Dr" right before it).
"""

from __future__ import annotations

_TERMS = """
a&o aox3 aaox3 abd abg abgs abx ac acei ace adl adls afib aflutter afeb afebrile ah ak aka alb albumin albuterol
alk amb ambu amio amiodarone amp amps amt anc angio ant aox ap apap appt aptt ards arf art asa asap asd ax
bal bb bbs bc bcx bid bilat bili bipap biv bld bm bmp bms bnp bp bpm br brady bs bsl bun bx
ca cabg cad cap caps cath cbc cc ccu cdiff ceph cefazolin ceftriaxone chf chem chest chg ci cipro ck
cl clonidine cm cmo cmv cns co co2 coags colace copd coumadin cp cpap cpk cr crbsi crit crrt cs csf ct cta
cv cva cvl cvp cvvh cvvhd cx cxr cyclo d5w d50 dc dced dcd ddavp demerol dex dexmed dialysis diflucan dig
dilaudid diltiazem dm dnr dni doe dobutamine dopa dopamine dp dr drsg dsg dt dvt dx
ecg echo ecmo ed edema eeg eg ef egd ekg emt ent epi eps ercp esrd et ett ext
fa febrile fen fentanyl ffp fio2 flagyl flex fluc foley fs fsbs ft fu fx
gcs gerd gi gj gluc gt gtt gtts gu
h2o haldol hb hbv hct hco3 hcp hd hemo heme hep heparin hgb hh hiv hl hob hpi hr hs htn hx
iabp icd icp icu id ie ij im imdur inr insulin io ip ir is isordil iv ivf ivp
jp jvd
kcl kg kvo
la labetalol lac lactate lap lasix lat lb lbs lcx ld lda ldh ldl le levo levophed levofloxacin lft lfts lg
lido lisinopril liter lll lls lmp lo lop lopressor lorazepam lot lov lovenox ls lt lue lul lv lvef lx lyte lytes
ma mae map mar mcg mdi meds mg mgso4 mi micu mivf ml mm mmhg mn mo mod mom morphine mri mrsa ms msicu
mso4 mtx mvi
na nad nc neb nebs neo neuro ng ngt nh nicu nitro nkda nl nmb nn noc npo nr ns nsr nstemi ntg nto nv
o2 oob op or ot ox oxy
pa pac pacu pad pao2 pap pca pcn pco2 pcp pcxr pe peep peg pep pepcid per perrl pfo pft ph picc plt plts pmh
pms pna po poc pod post pov pp ppd ppi pr pre prbc prbcs prn pro prob propofol prot ps psv pt pta ptt pvc pvcs
q1 q2 q3 q4 q6 q8 q12 q24 qd qhs qid qod qs qt
ra rbc rll rml rn ro rom rr rrr rsbi rt rue rul rx
sa sao2 sat sats sbp sc scd scds sd sed sicu simv sl slp sob sp spo2 sq sr ss stat stemi sts sub sup svt sx
tb tbsp tcn td tee temp tf tfs tid tko tlc tmax tn tpa tpn tr trach tsh tte tx ty
ua ubo uo uop ur uri us uti
vanc vanco vancomycin vap vats vc vent vf vfib vs vss vt vtach
wbc wnl wt
xr
zosyn zofran
min mrn acct ssn ems pgy q1h q2h q4h q6h q8h q12h medicaid medicare dob vna rehab portal msg pts
hickman groshong quinton shiley swan cordis dobhoff pleurevac penrose salem sump miami jackson-pratt bair hugger
max geri ted teds kling sween endo hoyer drager cane fleet senna purewick flexiseal chux mepilex tegaderm duoderm
etoh ivdu ivda hem onc hub hx sx dx tx fx rx px cx sz szs
son sons wife husband daughter friend niece nephew sister brother mother father mom dad aunt uncle
dtr neighbor neighbour grandson granddaughter stepson stepdaughter boyfriend girlfriend fiance fiancee hcp
mallampati trendelenburg kussmaul homans korotkoff valsalva tinel lachman seldinger broviac sengstaken pleurx
tenckhoff kerlix allevyn xeroform medipore telfa glu trop phos ckmb percocet kayexalate
omnicell carevue metavision cerner meditech webomr alaris medfusion jevity osmolite nepro glucerna vivonex peptamen
isosource pulmocare novasource beneprotein thickit juven prosource arginaid primafit provon dakins santyl mepitel
adaptic acticoat aquaphor criticaid calmoseptine desitin baza lantiseptic peridex biotene yankauer portex tracoe
ventimask vapotherm optiflow airvo respironics avea ltv
vea fem fent mech sys dia resp synch ganz ceftaz ros perl perla perrla nsg grav riss yest crepitus careview
pcv imv vvi ddd aai nsb mic iab ivab mds ho los sang sero serosang dng drng perm flowsheet cont
""" .split()

# Given names that nursing notes use as words: colours and looks of urine, sputum, pupils or skin
# ("amber urine", "pupils pearl", "rusty sputum"), "eve" for evening and "aline" for an arterial line.
# Such a word is a name only when a title or relation announces it ("daughter Amber") or another
# name stands beside it ("Eve Okafor"), never on its own.
DESCRIPTIVE_NAMES: frozenset[str] = frozenset("amber pearl ruby hazel coral ginger rusty crystal eve aline".split())

CLINICAL_TERMS: frozenset[str] = frozenset(_TERMS)

# Drug and chemistry word endings: "switched from cefepime", "on amlodipine 10" name no town or ward.
DRUG_ENDINGS = (
    "pime", "mycin", "cillin", "olol", "pril", "sartan", "statin", "azole", "ide", "ine", "one", "vir", "mab", "nib",
    "pam", "lam", "done", "oxacin", "cycline", "penem", "cef", "xaban", "parin", "ase", "ate", "ium", "ol", "triptan",
    "gatran", "setron", "afil",
)
