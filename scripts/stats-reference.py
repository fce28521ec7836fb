#!/usr/bin/env python3
# Reference values for deployguard-core/src/analysis/stats.rs, computed exactly with the
# standard library only (math.comb, fractions, enumeration) or with the formula scipy uses for
# mannwhitneyu(x, y, alternative="greater", use_continuity=True). Run: python3 scripts/stats-reference.py
from math import comb, erfc, sqrt
from fractions import Fraction
from itertools import combinations
def fisher_greater(a,n1,c,n2):
    K=a+c; N=n1+n2
    tot=comb(N,n1)
    return float(sum(Fraction(comb(K,x)*comb(N-K,n1-x),tot) for x in range(a,min(K,n1)+1)))
print("tea", fisher_greater(3,4,1,4))
print("f1", fisher_greater(20,130,2,650))
print("f2", fisher_greater(2,1000,2,1000))
print("f3", fisher_greater(0,10,0,10))
print("f4", fisher_greater(5,5,0,5))
print("f5", fisher_greater(30,10000,20,10000))
# exact MWU greater: P(U >= u) where U = #(x>y) for candidate x
def exact_u_greater(n1,n2,u):
    from itertools import combinations
    N=n1+n2; cnt=0; tot=0
    for ranks in combinations(range(1,N+1), n1):
        R=sum(ranks); U=R-n1*(n1+1)//2
        tot+=1
        if U>=u: cnt+=1
    return Fraction(cnt,tot)
print("u55_21", float(exact_u_greater(5,5,21)))  # P(U>=21) == P(U<=4)
print("u34_12", float(exact_u_greater(3,4,12)))
def mwu_asym(x,y):
    allv=sorted([(v,0) for v in x]+[(v,1) for v in y])
    vals=[v for v,_ in allv]
    # midranks
    ranks={}
    i=0
    while i<len(vals):
        j=i
        while j<len(vals) and vals[j]==vals[i]: j+=1
        r=(i+1+j)/2
        for k in range(i,j): ranks.setdefault(vals[k],r)
        i=j
    n1=len(x); n2=len(y); N=n1+n2
    R1=sum(ranks[v] for v in x)
    U=R1-n1*(n1+1)/2
    from collections import Counter
    t=Counter(vals)
    tie=sum(c**3-c for c in t.values())
    s=sqrt(n1*n2/12*((N+1)-tie/(N*(N-1))))
    mu=n1*n2/2
    z=(U-mu-0.5)/s
    return U, 0.5*erfc(z/sqrt(2))
print("mw1", mwu_asym([1.1,2.2,3.3,4.4,5.5,6.6,7.7,8.8,9.9,10.0],[0.5,1.0,1.5,2.0,2.5,3.0,3.5,4.0,4.5,5.0]))
print("mw_ties", mwu_asym([1,2,2,3,3,3,4,5,5,6],[1,1,2,2,2,3,3,4,4,4]))
print("mw_same", mwu_asym([1,2,3,4,5,6,7,8,9,10],[1,2,3,4,5,6,7,8,9,10]))

print("ncdf", 0.5*erfc(-1.959963984540054/sqrt(2)), 0.5*erfc(3/sqrt(2)))
# The sequential judge's e-values (deployguard-core/src/analysis/sequential.rs): a uniform
# mixture over the grid of rate ratios above the tolerated one of the likelihood ratios of which
# version each error came from, given each interval's traffic share.
from math import log, exp
def e_value(intervals, tolerated):
    grid = [g for g in [1.25, 1.5, 2, 3, 5, 10] if g > tolerated]
    total = 0.0
    for phi in grid:
        l = 0.0
        for ec, eb, rc, rb in intervals:
            s = rc / (rc + rb)
            q = lambda f: s * f / (s * f + 1 - s)
            l += ec * log(q(phi) / q(tolerated)) + eb * log((1 - q(phi)) / (1 - q(tolerated)))
        total += exp(l) / len(grid)
    return total
print("e1", e_value([(3, 5, 300, 700)], 1))
print("e2", e_value([(45, 4, 300, 700)], 1))
print("e3", e_value([(15, 1, 100, 500)], 1))
print("e4", e_value([(15, 1, 100, 500)] * 2, 1))
print("e5", e_value([(10, 10, 500, 500)], 1.5))
